package core_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/driver/pgxdriver"
	"github.com/gworker/gworker/internal/pgtest"
)

// bulkSpecs are keyless jobs with every setting, some left at defaults.
func bulkSpecs() []core.NewJob {
	at := time.Date(2030, 5, 6, 7, 8, 9, 123456000, time.UTC)
	var jobs []core.NewJob
	for i := 0; i < 12; i++ {
		s := core.JobSpec{Priority: i%3 - 1}
		if i%4 != 3 {
			s.RunAt = at.Add(time.Duration(i) * time.Second)
		}
		if i%2 == 0 {
			s.QueueName = fmt.Sprintf("q%d", i%4)
		}
		if i%3 == 0 {
			s.MaxAttempts = 7
			s.Flags = []string{"x", "y"}
		}
		var payload any = map[string]any{"i": i, "nested": []any{1, "two", nil}}
		if i == 5 {
			payload = nil
		}
		jobs = append(jobs, core.NewJob{Identifier: fmt.Sprintf("task%d", i%3), Payload: payload, Spec: s})
	}
	return jobs
}

// rowsText is the jobs as text, sorted, without ids and times that differ
// between two adds; run_at left to the default is shown as "now".
func (b *bundle) rowsText(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, r := range b.jobs(t) {
		var p any
		_ = json.Unmarshal([]byte(r.Payload), &p)
		runAt := r.RunAt.UTC().Format(time.RFC3339Nano)
		if r.RunAt.Year() != 2030 {
			runAt = "now"
		}
		out = append(out, fmt.Sprintf("%s|%v|%v|%d|%s|%d|%d|%v|%v|%v|%d|%v", r.Task, deref(r.Queue), p, r.Priority,
			runAt, r.Attempts, r.MaxAttempts, deref(r.LastError), deref(r.Key), deref(r.LockedBy), r.Revision, deref(r.Flags)))
	}
	slices.Sort(out)
	return out
}

func TestBulkAddJobsGivesTheRowsAndNotificationOfAddJobs(t *testing.T) {
	b := setup(t) // not parallel: it listens for a server-wide channel
	conn, err := pgx.Connect(b.ctx, pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(b.ctx, `listen "jobs:insert"`); err != nil {
		t.Fatal(err)
	}
	count := func() float64 {
		t.Helper()
		ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
		defer cancel()
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var p map[string]float64
		if err := json.Unmarshal([]byte(n.Payload), &p); err != nil {
			t.Fatalf("payload %q: %v", n.Payload, err)
		}
		return p["count"]
	}
	jobs := bulkSpecs()
	if _, err := b.utils.AddJobs(b.ctx, jobs); err != nil {
		t.Fatal(err)
	}
	want := b.rowsText(t)
	if c := count(); c != 12 {
		t.Fatalf("AddJobs notified count %v", c)
	}
	b.exec(t, "delete from S._private_jobs")
	b.exec(t, "delete from S._private_tasks")
	b.exec(t, "delete from S._private_job_queues")

	// pgxdriver: COPY in a transaction of its own, creating the tasks and
	// queues again.
	copying := &countCopies{Database: b.db}
	cu, err := core.NewUtils(copying, core.UtilsOptions{Schema: b.schema})
	if err != nil {
		t.Fatal(err)
	}
	n, err := cu.BulkAddJobs(b.ctx, jobs)
	if err != nil || n != 12 || copying.rows != 12 {
		t.Fatalf("BulkAddJobs = %d, %v; %d rows went through COPY", n, err, copying.rows)
	}
	if got := b.rowsText(t); !slices.Equal(got, want) {
		t.Fatalf("BulkAddJobs rows differ from AddJobs':\ngot:  %v\nwant: %v", got, want)
	}
	if c := count(); c != 12 {
		t.Fatalf("BulkAddJobs notified count %v", c)
	}

	// A driver without COPY (here: an executor that hides it) inserts.
	b.exec(t, "delete from S._private_jobs")
	u, err := core.NewUtils(noCopy{b.db}, core.UtilsOptions{Schema: b.schema})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := u.BulkAddJobs(b.ctx, jobs); err != nil || n != 12 {
		t.Fatalf("BulkAddJobs without COPY = %d, %v", n, err)
	}
	if got := b.rowsText(t); !slices.Equal(got, want) {
		t.Fatalf("BulkAddJobs rows without COPY differ from AddJobs':\ngot:  %v\nwant: %v", got, want)
	}
	if c := count(); c != 12 {
		t.Fatalf("BulkAddJobs without COPY notified count %v", c)
	}
}

// countCopies counts the rows its transactions COPY.
type countCopies struct {
	core.Database
	rows int
}

func (d *countCopies) Begin(ctx context.Context) (core.Transaction, error) {
	tx, err := d.Database.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return &countingTx{Transaction: tx, d: d}, nil
}

type countingTx struct {
	core.Transaction
	d *countCopies
}

func (t *countingTx) CopyFrom(ctx context.Context, schema, table string, columns []string, rows [][]any) (int64, error) {
	t.d.rows += len(rows)
	return t.Transaction.(core.CopyFromer).CopyFrom(ctx, schema, table, columns, rows)
}

// noCopy is a Database whose transactions cannot COPY.
type noCopy struct{ core.Database }

func (d noCopy) Begin(ctx context.Context) (core.Transaction, error) {
	tx, err := d.Database.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return struct{ core.Transaction }{tx}, nil
}

func TestBulkAddJobsInTheCallersTransaction(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, commit := range []bool{false, true} {
		tx, err := b.pool.Begin(b.ctx)
		if err != nil {
			t.Fatal(err)
		}
		n, err := b.utils.WithTx(pgxdriver.Tx(tx)).BulkAddJobs(b.ctx, []core.NewJob{{Identifier: "a"}, {Identifier: "b", Spec: core.JobSpec{QueueName: "q"}}})
		if err != nil || n != 2 {
			t.Fatalf("BulkAddJobs in a transaction = %d, %v", n, err)
		}
		if got := len(b.jobs(t)); got != 0 {
			t.Fatalf("%d jobs visible before the caller's commit", got)
		}
		if commit {
			err = tx.Commit(b.ctx)
		} else {
			err = tx.Rollback(b.ctx)
		}
		if err != nil {
			t.Fatal(err)
		}
		if got, want := len(b.jobs(t)), map[bool]int{false: 0, true: 2}[commit]; got != want {
			t.Fatalf("commit %v: %d jobs, want %d", commit, got, want)
		}
	}
}

func TestBulkAddJobsRefusesBadInput(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cases := []struct {
		jobs  []core.NewJob
		field string
	}{
		{[]core.NewJob{{Identifier: "a"}, {Identifier: "b", Spec: core.JobSpec{JobKey: "k"}}}, "jobs[1].Spec.JobKey"},
		{[]core.NewJob{{Identifier: ""}}, "jobs[0].Identifier"},
		{[]core.NewJob{{Identifier: "a", Payload: json.RawMessage("{")}}, "jobs[0].Payload"},
	}
	for _, c := range cases {
		n, err := b.utils.BulkAddJobs(b.ctx, c.jobs)
		var ve *core.ValidationError
		if n != 0 || !errors.As(err, &ve) || ve.Field != c.field {
			t.Errorf("BulkAddJobs(%+v) = %d, %v; want a ValidationError for %s", c.jobs, n, err, c.field)
		}
	}
	if len(b.jobs(t)) != 0 {
		t.Fatal("refused input added jobs")
	}
	if n, err := b.utils.BulkAddJobs(b.ctx, nil); n != 0 || err != nil {
		t.Fatalf("no jobs: %d, %v", n, err)
	}
}

// Hooks see every job: BulkAddJobs goes through AddJobs then.
func TestBulkAddJobsWithHooks(t *testing.T) {
	t.Parallel()
	b := setup(t)
	u, err := core.NewUtils(b.db, core.UtilsOptions{Schema: b.schema, Hooks: core.Hooks{
		BeforeSchedule: func(_ context.Context, j *core.ScheduledJob) core.Decision {
			if j.Task == "skip_me" {
				return core.Skip()
			}
			j.Spec.Priority = 5
			return core.Continue()
		}}})
	if err != nil {
		t.Fatal(err)
	}
	n, err := u.BulkAddJobs(b.ctx, []core.NewJob{{Identifier: "a"}, {Identifier: "skip_me"}, {Identifier: "c"}})
	if err != nil || n != 2 {
		t.Fatalf("BulkAddJobs with hooks = %d, %v", n, err)
	}
	for _, r := range b.jobs(t) {
		if r.Task == "skip_me" || r.Priority != 5 {
			t.Fatalf("row %+v: the hook was not applied", r)
		}
	}
}

func TestConcurrentBulkAddsOfNewNamesLoseNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const writers, per = 6, 40
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		go func() {
			var jobs []core.NewJob
			for i := 0; i < per; i++ {
				jobs = append(jobs, core.NewJob{Identifier: fmt.Sprintf("new%d", i%5), Spec: core.JobSpec{QueueName: fmt.Sprintf("nq%d", i%3)}})
			}
			n, err := b.utils.BulkAddJobs(b.ctx, jobs)
			if err == nil && n != per {
				err = fmt.Errorf("BulkAddJobs added %d, want %d", n, per)
			}
			errs <- err
		}()
	}
	for w := 0; w < writers; w++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := b.queryInt(t, "select count(*) from S._private_jobs j join S._private_job_queues q on q.id = j.job_queue_id"); n != writers*per {
		t.Fatalf("%d jobs with their queue, want %d", n, writers*per)
	}
	if n := b.queryInt(t, "select count(*) from S._private_tasks"); n != 5 {
		t.Fatalf("%d tasks, want 5", n)
	}
}

// AddRawJob adds a keyless job with the plain statement AddJobs uses; the
// row is the one SQL add_job gives.
func TestAddRawJobKeylessMatchesAddJobFunction(t *testing.T) {
	t.Parallel()
	b := setup(t)
	at := time.Date(2030, 5, 6, 7, 8, 9, 123456000, time.UTC)
	specs := []*core.JobSpec{nil, {QueueName: "q", RunAt: at, MaxAttempts: 3, Priority: -2, Flags: []string{"b", "a"}}}
	for _, spec := range specs {
		if _, err := b.utils.AddRawJob(b.ctx, "raw", json.RawMessage(`{"x": [1, 2]}`), spec); err != nil {
			t.Fatal(err)
		}
	}
	fast := b.rowsText(t)
	b.exec(t, "delete from S._private_jobs")
	b.exec(t, `select S.add_job('raw', '{"x": [1, 2]}')`)
	b.exec(t, `select S.add_job('raw', '{"x": [1, 2]}', 'q', $1, 3, null, -2, array['b', 'a'])`, at)
	if slow := b.rowsText(t); !slices.Equal(fast, slow) {
		t.Fatalf("AddRawJob rows differ from add_job's:\nAddRawJob: %v\nadd_job:   %v", fast, slow)
	}
}
