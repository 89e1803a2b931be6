package pgbouncer_test

import (
	"os"
	"testing"

	"github.com/gworker/gworker/internal/pgtest"
)

func TestMain(m *testing.M) {
	code := pgtest.Main(m)
	stopBouncer()
	os.Exit(code)
}
