package pgxdriver_test

import (
	"crypto/rand"
	"encoding/hex"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/driver/pgxdriver"
	"github.com/gworker/gworker/internal/pgtest"
)

// execModes are the pgx query modes every value test runs in. The default
// prepares statements; the simple protocol is what PgBouncer in transaction
// pooling mode needs, and encodes arguments as SQL literals. The other three
// send arguments in yet other ways, so they come along cheaply.
var execModes = []struct {
	name string
	mode pgx.QueryExecMode
}{
	{"default", pgx.QueryExecModeCacheStatement},
	{"simple_protocol", pgx.QueryExecModeSimpleProtocol},
	{"cache_describe", pgx.QueryExecModeCacheDescribe},
	{"describe_exec", pgx.QueryExecModeDescribeExec},
	{"exec", pgx.QueryExecModeExec},
}

// newPool returns a pool of its own for one test, using mode, closed when
// the test ends.
func newPool(t *testing.T, mode pgx.QueryExecMode) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.DefaultQueryExecMode = mode
	cfg.MaxConns = 4
	pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// newSchema creates the test's own schema, so parallel tests never share a
// table, and returns its quoted name. pgtest drops it when the test ends.
func newSchema(t *testing.T, e core.Executor) string {
	t.Helper()
	name := pgx.Identifier{pgtest.Schema(t)}.Sanitize()
	mustExec(t, e, "create schema "+name)
	return name
}

// uniqueName returns prefix followed by random hex digits: NOTIFY channels
// and application names are database-wide, so parallel tests must not
// share them.
func uniqueName(prefix string) string {
	b := make([]byte, 6)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// mustExec runs a statement through the driver and fails the test on error.
func mustExec(t *testing.T, e core.Executor, sql string, args ...any) int64 {
	t.Helper()
	n, err := e.Exec(t.Context(), sql, args...)
	if err != nil {
		t.Fatalf("exec %q: %v", sql, err)
	}
	return n
}

// count returns select count(*) from table, read through pool directly.
func count(t *testing.T, pool *pgxpool.Pool, table string) int64 {
	t.Helper()
	var n int64
	if err := pool.QueryRow(t.Context(), "select count(*) from "+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// newDriver returns a Driver over a pool of its own in the given mode.
func newDriver(t *testing.T, mode pgx.QueryExecMode) (*pgxdriver.Driver, *pgxpool.Pool) {
	t.Helper()
	pool := newPool(t, mode)
	return pgxdriver.New(pool), pool
}
