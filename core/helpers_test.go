package core_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/driver/pgxdriver"
	"github.com/gworker/gworker/internal/clocktest"
	"github.com/gworker/gworker/internal/pgtest"
	"github.com/gworker/gworker/internal/testkit"
)

func TestMain(m *testing.M) {
	if raw := os.Getenv(helperEnv); raw != "" {
		os.Exit(helperWorker(raw))
	}
	os.Exit(pgtest.Main(m))
}

// bundle is what most tests need: a migrated schema of their own.
type bundle struct {
	ctx    context.Context
	pool   *pgxpool.Pool
	db     *pgxdriver.Driver
	utils  *core.Utils
	schema string
	q      string // the quoted schema name, for raw SQL
}

func setup(t *testing.T) *bundle {
	t.Helper()
	b := setupUnmigrated(t)
	if err := b.utils.Migrate(b.ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return b
}

func setupUnmigrated(t *testing.T) *bundle {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	pool := pgtest.Pool(t)
	schema := pgtest.Schema(t)
	db := pgxdriver.New(pool)
	u, err := core.NewUtils(db, core.UtilsOptions{Schema: schema})
	if err != nil {
		t.Fatalf("NewUtils: %v", err)
	}
	return &bundle{ctx: ctx, pool: pool, db: db, utils: u, schema: schema, q: pgx.Identifier{schema}.Sanitize()}
}

// sql replaces S in a statement with the test's quoted schema name.
func (b *bundle) sql(s string) string { return strings.ReplaceAll(s, "S.", b.q+".") }

// registerWorker plants w in the schema's worker registry.
func (b *bundle) registerWorker(t *testing.T, w testkit.RegisteredWorker) {
	t.Helper()
	testkit.RegisterWorker(t, b.ctx, b.db, b.schema, w)
}

func (b *bundle) exec(t *testing.T, s string, args ...any) {
	t.Helper()
	if _, err := b.pool.Exec(b.ctx, b.sql(s), args...); err != nil {
		t.Fatalf("exec %s: %v", s, err)
	}
}

func (b *bundle) queryInt(t *testing.T, s string, args ...any) int {
	t.Helper()
	var n int
	if err := b.pool.QueryRow(b.ctx, b.sql(s), args...).Scan(&n); err != nil {
		t.Fatalf("query %s: %v", s, err)
	}
	return n
}

// jobRow is a job read straight from the table, for assertions that must not
// trust the client's own reading code.
type jobRow struct {
	ID          int64
	Task        string
	Queue       *string
	Payload     string
	Priority    int16
	RunAt       time.Time
	Attempts    int16
	MaxAttempts int16
	LastError   *string
	Key         *string
	LockedAt    *time.Time
	LockedBy    *string
	Revision    int32
	Flags       *string
}

func (b *bundle) jobs(t *testing.T) []jobRow {
	t.Helper()
	rows, err := b.pool.Query(b.ctx, b.sql(`
		select j.id, t.identifier, q.queue_name, j.payload::text, j.priority, j.run_at, j.attempts, j.max_attempts,
		       j.last_error, j.key, j.locked_at, j.locked_by, j.revision, j.flags::text
		from S._private_jobs j
		join S._private_tasks t on t.id = j.task_id
		left join S._private_job_queues q on q.id = j.job_queue_id
		order by j.id`))
	if err != nil {
		t.Fatalf("read jobs: %v", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (jobRow, error) {
		var j jobRow
		err := r.Scan(&j.ID, &j.Task, &j.Queue, &j.Payload, &j.Priority, &j.RunAt, &j.Attempts, &j.MaxAttempts,
			&j.LastError, &j.Key, &j.LockedAt, &j.LockedBy, &j.Revision, &j.Flags)
		return j, err
	})
	if err != nil {
		t.Fatalf("read jobs: %v", err)
	}
	return out
}

func (b *bundle) job(t *testing.T, id int64) jobRow {
	t.Helper()
	for _, j := range b.jobs(t) {
		if j.ID == id {
			return j
		}
	}
	t.Fatalf("job %d not found", id)
	return jobRow{}
}

func (b *bundle) dbNow(t *testing.T) time.Time {
	t.Helper()
	var now time.Time
	if err := b.pool.QueryRow(b.ctx, "select now()").Scan(&now); err != nil {
		t.Fatal(err)
	}
	return now
}

func mustJSONEqual(t *testing.T, got, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		t.Fatalf("got invalid JSON %q: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("want invalid JSON %q: %v", want, err)
	}
	if fmt.Sprint(g) != fmt.Sprint(w) {
		t.Fatalf("JSON = %s, want %s", got, want)
	}
}

func ptr[T any](v T) *T { return &v }

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

// fireNext waits until a timer armed in a function whose name contains
// armedIn (say "(*completer)") is pending on clock, moves the clock on to
// it, and returns when that was. It fails the test when no such timer
// comes.
func fireNext(t *testing.T, clock *clocktest.Clock, armedIn string) time.Time {
	t.Helper()
	at := pendingTimer(t, clock, armedIn)
	clock.AdvanceTo(at)
	return at
}

// pendingTimer waits until a timer armed in a function whose name contains
// armedIn is pending on clock and returns when it fires, without moving
// the clock.
func pendingTimer(t *testing.T, clock *clocktest.Clock, armedIn string) time.Time {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testkit.DefaultWait)
	defer cancel()
	var at time.Time
	err := clock.WaitUntil(ctx, func(ts []clocktest.PendingTimer) bool {
		for _, p := range ts {
			if p.ArmedIn(armedIn) {
				at = p.At
				return true
			}
		}
		return false
	})
	if err != nil {
		// Where the worker waits instead says why.
		t.Fatalf("no timer of %s came to be pending: %v; %d other timers pending; the worker's goroutines:\n%s",
			armedIn, err, len(clock.Timers()), testkit.Goroutines("gworker/core."))
	}
	return at
}
