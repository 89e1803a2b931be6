package bundriver_test

import (
	"context"
	"os"
	"testing"

	"github.com/uptrace/bun/driver/pgdriver"

	"github.com/gworker/gworker/internal/pgtest"
)

func TestMain(m *testing.M) {
	// pgdriver logs each connection it discards; the tests break
	// connections on purpose.
	pgdriver.Logger = quiet{}
	os.Exit(pgtest.Main(m))
}

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}
