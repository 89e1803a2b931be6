package pgbouncer_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/driver/bundriver"
	"github.com/gworker/gworker/driver/pgxdriver"
	"github.com/gworker/gworker/driver/pqdriver"
	"github.com/gworker/gworker/internal/pglisten"
	"github.com/gworker/gworker/internal/pgtest"
	"github.com/gworker/gworker/internal/testkit"
)

// Workers poll once an hour, so a job that starts within wakeBound of its
// add was announced by a notification. The bound is wide (a pick-up takes
// milliseconds) and still a tiny fraction of the poll.
const (
	pollInterval = time.Hour
	wakeBound    = 5 * time.Second
)

// driver opens one of gworker's drivers on url, listening on listenURL
// (the driver's ListenDSN option) unless it is "".
type driver struct {
	name string
	open func(ctx context.Context, url, listenURL string) (core.Database, func() error, error)
	// listenOption is the option the driver's error names as the fix.
	listenOption string
}

var drivers = []driver{
	{name: "pgx", listenOption: "pgxdriver.ListenDSN(url)",
		open: func(ctx context.Context, url, listenURL string) (core.Database, func() error, error) {
			var opts []pgxdriver.Option
			if listenURL != "" {
				opts = append(opts, pgxdriver.ListenDSN(listenURL))
			}
			d, err := pgxdriver.Open(ctx, url, opts...)
			if err != nil {
				return nil, nil, err
			}
			return d, d.Close, nil
		}},
	// pgxdriver.New over a pool the application made with pgx's defaults
	// (named prepared statements): the Driver checks for a pooler at its
	// first statement.
	{name: "pgx-new", listenOption: "pgxdriver.ListenDSN(url)",
		open: func(ctx context.Context, url, listenURL string) (core.Database, func() error, error) {
			pool, err := pgxpool.New(ctx, url)
			if err != nil {
				return nil, nil, err
			}
			var opts []pgxdriver.Option
			if listenURL != "" {
				opts = append(opts, pgxdriver.ListenDSN(listenURL))
			}
			return pgxdriver.New(pool, opts...), func() error { pool.Close(); return nil }, nil
		}},
	{name: "pq", listenOption: "pqdriver.ListenDSN(url)",
		open: func(ctx context.Context, url, listenURL string) (core.Database, func() error, error) {
			var opts []pqdriver.Option
			if listenURL != "" {
				opts = append(opts, pqdriver.ListenDSN(listenURL))
			}
			d, err := pqdriver.Open(ctx, url, opts...)
			if err != nil {
				return nil, nil, err
			}
			return d, d.Close, nil
		}},
	{name: "bun", listenOption: "bundriver.ListenDSN(url)",
		open: func(ctx context.Context, url, listenURL string) (core.Database, func() error, error) {
			var opts []bundriver.Option
			if listenURL != "" {
				opts = append(opts, bundriver.ListenDSN(listenURL))
			}
			d, err := bundriver.Open(ctx, url, opts...)
			if err != nil {
				return nil, nil, err
			}
			return d, d.Close, nil
		}},
}

// noting records in events each Listen that returned a session
// (testkit.Listened) and each notification received, as "notify:CHANNEL".
type noting struct {
	core.Database
	events *testkit.Events
}

func (n noting) Listen(ctx context.Context, channels ...string) (core.Notifications, error) {
	s, err := n.Database.Listen(ctx, channels...)
	if err != nil {
		return nil, err
	}
	n.events.Record(testkit.Listened)
	return notingSession{Notifications: s, events: n.events}, nil
}

type notingSession struct {
	core.Notifications
	events *testkit.Events
}

func (s notingSession) Receive(ctx context.Context) (core.Notification, error) {
	m, err := s.Notifications.Receive(ctx)
	if err == nil && m.Channel != "" {
		s.events.Record("notify:" + m.Channel)
	}
	return m, err
}

// runs records each handler run by payload number and by job id.
type runs struct {
	mu    sync.Mutex
	byN   map[int]int
	byID  map[int64]int
	ev    *testkit.Events
	inQ   atomic.Int32 // jobs of the named queue running now
	maxQ  atomic.Int32 // the most that ever ran at once
	queue string
}

func (r *runs) ran(id int64, n int) {
	r.mu.Lock()
	r.byN[n]++
	r.byID[id]++
	r.mu.Unlock()
	r.ev.Record("ran")
}

func TestWorkersThroughPgBouncer(t *testing.T) {
	b := pgbouncerFor(t)
	for _, d := range drivers {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			workersThrough(t, b, d)
		})
	}
}

func workersThrough(t *testing.T, b *bouncer, d driver) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	schema := pgtest.Schema(t)
	db, closeDB, err := d.open(ctx, b.pooled, b.direct)
	if err != nil {
		t.Fatalf("open %s through pgbouncer: %v", d.name, err)
	}
	defer closeDB()

	if err := core.Migrate(ctx, db, core.MigrateOptions{Schema: schema}); err != nil {
		t.Fatalf("migrate through pgbouncer: %v", err)
	}
	// Migrating again finds the schema up to date, through pgbouncer too.
	if err := core.Migrate(ctx, db, core.MigrateOptions{Schema: schema}); err != nil {
		t.Fatalf("migrate again through pgbouncer: %v", err)
	}
	u, err := core.NewUtils(db, core.UtilsOptions{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}

	// Jobs 0-11 one by one with the Go client, 12-19 in a named queue
	// with one AddJobs, 20-23 with SQL add_job; three jobs that fail for
	// good.
	want := 0
	for ; want < 12; want++ {
		if _, err := u.AddRawJob(ctx, "work", map[string]int{"n": want}, nil); err != nil {
			t.Fatalf("add job %d through pgbouncer: %v", want, err)
		}
	}
	var batch []core.NewJob
	for ; want < 20; want++ {
		batch = append(batch, core.NewJob{Identifier: "work", Payload: map[string]int{"n": want}, Spec: core.JobSpec{QueueName: "serial"}})
	}
	if _, err := u.AddJobs(ctx, batch); err != nil {
		t.Fatalf("add jobs through pgbouncer: %v", err)
	}
	addJob := "select " + pgx.Identifier{schema}.Sanitize() + ".add_job('work', json_build_object('n', $1::int))"
	for ; want < 24; want++ {
		if _, err := db.Exec(ctx, addJob, want); err != nil {
			t.Fatalf("SQL add_job through pgbouncer: %v", err)
		}
	}
	for i := range 3 {
		if _, err := u.AddRawJob(ctx, "boom", map[string]int{"n": 1000 + i}, &core.JobSpec{MaxAttempts: 1}); err != nil {
			t.Fatal(err)
		}
	}

	events := &testkit.Events{}
	rec := &runs{byN: map[int]int{}, byID: map[int64]int{}, ev: events, queue: "serial"}
	work := core.RawTask("work", func(ctx context.Context, job *core.Job) error {
		var p struct{ N int }
		if err := json.Unmarshal(job.Payload, &p); err != nil {
			return err
		}
		if job.QueueName == rec.queue {
			now := rec.inQ.Add(1)
			defer rec.inQ.Add(-1)
			for m := rec.maxQ.Load(); now > m && !rec.maxQ.CompareAndSwap(m, now); m = rec.maxQ.Load() {
			}
			// The job's own work, through pgbouncer, long enough that a
			// second job of the queue run meanwhile would overlap it.
			if _, err := db.Exec(ctx, "select pg_sleep(0.01)"); err != nil {
				return err
			}
		}
		rec.ran(job.ID, p.N)
		return nil
	})
	boom := core.RawTask("boom", func(context.Context, *core.Job) error { return errors.New("boom, on purpose") })

	logs := &testkit.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		w, err := core.NewWorker(core.WorkerOptions{
			Database:     noting{Database: db, events: events},
			Schema:       schema,
			Tasks:        []core.Task{work, boom},
			Concurrency:  3,
			PollInterval: pollInterval,
			Logger:       log.With("worker", i),
			Hooks:        core.Hooks{OnEvent: events.OnEvent},
		})
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { errs[i] = w.Run(wctx) })
	}
	defer func() {
		if t.Failed() {
			t.Logf("workers' logs:\n%s", logs.String())
		}
	}()

	events.Wait(t, "ran", want)
	events.Wait(t, (core.JobPermanentlyFailed{}).EventName(), 3)
	events.Wait(t, testkit.Listened, 2)
	direct, err := pgx.Connect(ctx, b.direct)
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close(context.WithoutCancel(ctx))
	jobs := pgx.Identifier{schema, "jobs"}.Sanitize()
	var left, failed int
	testkit.Eventually(t, "the finished jobs' outcomes recorded", func() bool {
		err := direct.QueryRow(ctx, "select count(*) filter (where task_identifier = 'work' or locked_at is not null), "+
			"count(*) filter (where task_identifier = 'boom' and attempts = 1 and last_error like 'boom%' and locked_at is null) from "+jobs).
			Scan(&left, &failed)
		return err == nil && left == 0 && failed == 3
	})

	// Both workers are idle and listen on their direct connections: only
	// a notification brings them a new job before the next poll, an hour
	// away.
	notified := events.Count("notify:jobs:insert")
	began := time.Now()
	if _, err := u.AddRawJob(ctx, "work", map[string]int{"n": 100}, nil); err != nil {
		t.Fatal(err)
	}
	wakeCtx, cancelWake := context.WithTimeout(ctx, wakeBound)
	defer cancelWake()
	if err := events.Await(wakeCtx, "ran", want+1); err != nil {
		t.Fatalf("a job added while the workers were idle did not run within %v (they poll every %v): no notification woke them", wakeBound, pollInterval)
	}
	t.Logf("%s: add through pgbouncer -> handler done, woken by NOTIFY on the direct connection: %v", d.name, time.Since(began).Round(time.Millisecond))
	if events.Count("notify:jobs:insert") <= notified {
		t.Errorf("the new job ran, but no jobs:insert notification reached a worker")
	}

	stop()
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("worker %d: Run returned %v", i, err)
		}
	}

	rec.mu.Lock()
	defer rec.mu.Unlock()
	for n := range want {
		if rec.byN[n] != 1 {
			t.Errorf("job %d ran %d times; want once", n, rec.byN[n])
		}
	}
	if rec.byN[100] != 1 {
		t.Errorf("the job added while idle ran %d times; want once", rec.byN[100])
	}
	for id, c := range rec.byID {
		if c != 1 {
			t.Errorf("job id %d ran %d times", id, c)
		}
	}
	if m := rec.maxQ.Load(); m != 1 {
		t.Errorf("at most %d jobs of the named queue ran at once; want 1 (serial)", m)
	}
	var locked int
	if err := direct.QueryRow(ctx, "select count(*) from "+jobs+" where locked_at is not null").Scan(&locked); err != nil || locked != 0 {
		t.Errorf("%d jobs still locked after the workers stopped (%v)", locked, err)
	}
	if strings.Contains(logs.String(), "poll-only") {
		t.Errorf("a worker went poll-only although it listens on a direct connection")
	}
}

// TestWorkerWithoutListenConnection: a worker whose driver would LISTEN
// through pgbouncer (no direct connection given) says, at start, that
// notifications cannot arrive and which option fixes it; with
// RequireNotifications that is Run's error.
func TestWorkerWithoutListenConnection(t *testing.T) {
	b := pgbouncerFor(t)
	for _, d := range drivers {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			schema := pgtest.Schema(t)
			db, closeDB, err := d.open(ctx, b.pooled, "")
			if err != nil {
				t.Fatalf("open %s through pgbouncer: %v", d.name, err)
			}
			defer closeDB()
			if err := core.Migrate(ctx, db, core.MigrateOptions{Schema: schema}); err != nil {
				t.Fatal(err)
			}
			task := core.RawTask("work", func(context.Context, *core.Job) error { return nil })

			// With RequireNotifications, Run fails with that error; it
			// runs beside the other worker, as finding out may take the
			// driver a few seconds.
			required := make(chan error, 1)
			go func() {
				w, err := core.NewWorker(core.WorkerOptions{Database: db, Schema: schema, Tasks: []core.Task{task},
					PollInterval: pollInterval, RequireNotifications: true, Logger: slog.New(slog.DiscardHandler)})
				if err == nil {
					err = w.Run(ctx)
				}
				required <- err
			}()

			// Without it: a warning naming the fix, and the worker polls.
			logs := &testkit.Buffer{}
			w, err := core.NewWorker(core.WorkerOptions{Database: db, Schema: schema, Tasks: []core.Task{task},
				PollInterval: pollInterval, Logger: slog.New(slog.NewTextHandler(logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			wctx, stop := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- w.Run(wctx) }()
			defer func() {
				if t.Failed() {
					t.Logf("worker log:\n%s", logs.String())
				}
			}()
			testkit.Eventually(t, "the warning that LISTEN cannot work through pgbouncer", func() bool {
				// One warning that says why and names the fix.
				for line := range strings.Lines(logs.String()) {
					if strings.Contains(line, "level=WARN") && strings.Contains(line, "PgBouncer in transaction pooling mode") &&
						strings.Contains(line, d.listenOption) {
						return true
					}
				}
				return false
			})
			stop()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
			t.Logf("%s: %s", d.name, firstLine(logs.String(), d.listenOption))

			err = <-required
			if !errors.Is(err, core.ErrNotificationsUnsupported) || !strings.Contains(err.Error(), d.listenOption) {
				t.Errorf("Run with RequireNotifications through pgbouncer returned %v; want an error wrapping "+
					"core.ErrNotificationsUnsupported that names %s", err, d.listenOption)
			}
		})
	}
}

// firstLine returns the first line of s that contains sub.
func firstLine(s, sub string) string {
	for l := range strings.Lines(s) {
		if strings.Contains(l, sub) {
			return strings.TrimSpace(l)
		}
	}
	return fmt.Sprintf("(no line with %q)", sub)
}

// TestListenThroughSessionPooling: a pooler in session pooling mode keeps
// a client's server connection, and with it a LISTEN. Each driver's check
// must let it through: the listen connection may be a session pooling
// port. (bundriver on pgdriver refuses to LISTEN behind any pooler
// without ListenDSN; pgxdriver and pqdriver listen there by default.)
func TestListenThroughSessionPooling(t *testing.T) {
	b := pgbouncerFor(t)
	for _, d := range drivers {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			db, closeDB, err := d.open(ctx, b.session, b.session)
			if err != nil {
				t.Fatalf("open %s through pgbouncer's session pooling: %v", d.name, err)
			}
			defer closeDB()
			channel := "session_" + d.name
			n, err := db.Listen(ctx, channel)
			if err != nil {
				t.Fatalf("Listen through session pooling: %v", err)
			}
			defer n.Close(context.WithoutCancel(ctx))
			if _, err := db.Exec(ctx, "select pg_notify($1, 'hello')", channel); err != nil {
				t.Fatal(err)
			}
			for {
				m, err := n.Receive(ctx)
				if err != nil {
					t.Fatalf("no notification through session pooling: %v", err)
				}
				if m.Channel == channel {
					if m.Payload != "hello" {
						t.Errorf("payload %q, want hello", m.Payload)
					}
					return
				}
			}
		})
	}
}

// TestPoolerDetected: the check the drivers rely on tells PgBouncer, in
// either pooling mode, from PostgreSQL itself.
func TestPoolerDetected(t *testing.T) {
	b := pgbouncerFor(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, tt := range []struct {
		name, url string
		pooled    bool
	}{{"direct", b.direct, false}, {"transaction pooling", b.pooled, true}, {"session pooling", b.session, true}} {
		c, err := pgconn.Connect(ctx, tt.url)
		if err != nil {
			t.Fatal(err)
		}
		pid, pooled, err := pglisten.BackendPID(ctx, c)
		c.Close(ctx)
		if err != nil || pid == 0 || pooled != tt.pooled {
			t.Errorf("%s: BackendPID = %d, pooled %v, %v; want pooled %v", tt.name, pid, pooled, err, tt.pooled)
		}
	}
}
