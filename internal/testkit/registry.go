package testkit

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gworker/gworker/core"
)

// RegisteredWorker is a row of gworker's worker registry
// (_private_gworker_workers) that a test plants to stand for a worker it
// does not run: one that crashed, or one alive on another machine. Zero
// fields take the table's defaults ("" and 0), except HeartbeatInterval.
type RegisteredWorker struct {
	// ID is the worker_id: the pool id the worker writes to locked_by.
	ID          string
	Hostname    string
	PID         int
	Version     string
	Concurrency int
	// HeartbeatInterval is the worker's own interval; 0 means 10 seconds.
	HeartbeatInterval time.Duration
	// StartedAgo and HeartbeatAgo are how long before now (the database's
	// clock) the worker started and last beat; 0 means now.
	StartedAgo, HeartbeatAgo time.Duration
	// Tasks are the identifiers it registered. nil leaves the column out
	// (it defaults to empty), so that the row also fits a registry
	// without it (one an older gworker migrated).
	Tasks []string
}

// RegisterWorker inserts w into the worker registry of schema through db,
// failing t if it cannot.
func RegisterWorker(t testing.TB, ctx context.Context, db core.Database, schema string, w RegisteredWorker) {
	t.Helper()
	interval := w.HeartbeatInterval
	if interval == 0 {
		interval = 10 * time.Second
	}
	cols := "worker_id, hostname, pid, version, concurrency, heartbeat_interval, started_at, last_heartbeat_at"
	vals := `$1, $2, $3::int, $4, $5::int, $6::float8 * interval '1 second',
  now() - $7::float8 * interval '1 second', now() - $8::float8 * interval '1 second'`
	args := []any{w.ID, w.Hostname, int64(w.PID), w.Version, int64(w.Concurrency),
		interval.Seconds(), w.StartedAgo.Seconds(), w.HeartbeatAgo.Seconds()}
	if w.Tasks != nil {
		cols += ", tasks"
		vals += ", $" + strconv.Itoa(len(args)+1) + "::text[]"
		args = append(args, w.Tasks)
	}
	sql := "insert into " + quoteIdent(schema) + "._private_gworker_workers (" + cols + ")\nvalues (" + vals + ")"
	if _, err := db.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("register worker %s: %v", w.ID, err)
	}
}

// quoteIdent quotes a name for SQL, doubling the quotes in it.
func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
