package conformance_test

import (
	"os"
	"testing"

	"github.com/gworker/gworker/internal/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
