package core_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gworker/gworker/core"
)

// eventLog records the names of the events a worker emits.
type eventLog struct {
	mu    sync.Mutex
	names []string
}

func (l *eventLog) hooks() core.Hooks {
	return core.Hooks{OnEvent: func(_ context.Context, e core.Event) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.names = append(l.names, e.EventName())
	}}
}

func (l *eventLog) has(name string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, x := range l.names {
		if x == name {
			n++
		}
	}
	return n
}

// dueIn is how far the job's run_at lies ahead of the database's clock.
func (b *bundle) dueIn(t *testing.T, id int64) time.Duration {
	t.Helper()
	var secs float64
	if err := b.pool.QueryRow(b.ctx, b.sql("select extract(epoch from run_at - now())::float8 from S._private_jobs where id = $1"), id).Scan(&secs); err != nil {
		t.Fatal(err)
	}
	return time.Duration(secs * float64(time.Second))
}

func TestFailPermanentlyFailsTheJobForGoodAtOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var runs atomic.Int32
	events := &eventLog{}
	w, _ := b.worker(t, core.WorkerOptions{Hooks: events.hooks(), Tasks: []core.Task{
		core.RawTask("charge", func(context.Context, *core.Job) error {
			runs.Add(1)
			return fmt.Errorf("charge: %w", core.FailPermanently(errors.New("card declined")))
		}),
	}})
	job := b.add(t, "charge", nil, &core.JobSpec{QueueName: "billing"})
	if err := w.RunOnce(b.ctx); err != nil {
		t.Fatal(err)
	}
	r := b.job(t, job.ID)
	if runs.Load() != 1 || r.Attempts != core.DefaultMaxAttempts || r.MaxAttempts != core.DefaultMaxAttempts {
		t.Fatalf("ran %d times; attempts %d of %d, want 1 run and no attempts left", runs.Load(), r.Attempts, r.MaxAttempts)
	}
	if deref(r.LastError) != "charge: card declined" || r.LockedBy != nil || r.LockedAt != nil {
		t.Fatalf("row = %+v (last_error %v), want unlocked with the handler's message", r, deref(r.LastError))
	}
	// run_at is kept, as permanently_fail_jobs keeps it.
	if !r.RunAt.Equal(job.RunAt) {
		t.Fatalf("run_at moved from %v to %v", job.RunAt, r.RunAt)
	}
	if n := b.queryInt(t, "select count(*) from S._private_job_queues where locked_by is not null"); n != 0 {
		t.Fatalf("%d queues left locked", n)
	}
	if events.has("job:error") != 1 || events.has("job:failed") != 1 {
		t.Fatalf("events %v, want one job:error and one job:failed", events.names)
	}
}

func TestRetryAfterRunsTheJobAgainLaterWithoutCountingTheAttempt(t *testing.T) {
	t.Parallel()
	b := setup(t)
	events := &eventLog{}
	w, _ := b.worker(t, core.WorkerOptions{Hooks: events.hooks(), Tasks: []core.Task{
		core.RawTask("sync", func(_ context.Context, job *core.Job) error {
			if string(job.Payload) == `{"why":true}` {
				return core.RetryAfter(time.Hour, errors.New("rate limited"))
			}
			return core.RetryAfter(10*time.Minute, nil)
		}),
	}})
	why := b.add(t, "sync", map[string]bool{"why": true}, &core.JobSpec{QueueName: "crm"})
	quiet := b.add(t, "sync", nil, nil)
	// A job that failed before keeps its attempts and its last_error
	// when snoozed without a reason.
	b.exec(t, "update S._private_jobs set attempts = 2, last_error = 'earlier failure' where id = $1", quiet.ID)
	if err := w.RunOnce(b.ctx); err != nil {
		t.Fatal(err)
	}
	r := b.job(t, why.ID)
	if r.Attempts != 0 || deref(r.LastError) != "rate limited" || r.LockedBy != nil {
		t.Fatalf("snoozed with a reason: attempts %d, last_error %v, locked_by %v", r.Attempts, deref(r.LastError), deref(r.LockedBy))
	}
	if d := b.dueIn(t, why.ID); d < time.Hour-time.Minute || d > time.Hour {
		t.Fatalf("run_at is %v ahead of the database's clock, want about 1h", d)
	}
	r = b.job(t, quiet.ID)
	if r.Attempts != 2 || deref(r.LastError) != "earlier failure" || r.LockedBy != nil {
		t.Fatalf("snoozed without a reason: attempts %d, last_error %v, locked_by %v", r.Attempts, deref(r.LastError), deref(r.LockedBy))
	}
	if d := b.dueIn(t, quiet.ID); d < 9*time.Minute || d > 10*time.Minute {
		t.Fatalf("run_at is %v ahead of the database's clock, want about 10m", d)
	}
	if n := b.queryInt(t, "select count(*) from S._private_job_queues where locked_by is not null"); n != 0 {
		t.Fatalf("%d queues left locked", n)
	}
	if events.has("job:snoozed") != 2 || events.has("job:error") != 0 {
		t.Fatalf("events %v, want two job:snoozed and no job:error", events.names)
	}
}

type invoice struct {
	Number string `json:"number"`
}

func (invoice) TaskIdentifier() string { return "send_invoice" }

func TestPayloadThatDoesNotDecodeFailsForGoodAfterOneRun(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var handled atomic.Int32
	events := &eventLog{}
	w, _ := b.worker(t, core.WorkerOptions{Hooks: events.hooks(), Tasks: []core.Task{
		core.NewTask(func(context.Context, *core.Job, invoice) error { handled.Add(1); return nil }),
	}})
	job := b.add(t, "send_invoice", map[string]int{"number": 42}, nil)
	if err := w.RunOnce(b.ctx); err != nil {
		t.Fatal(err)
	}
	r := b.job(t, job.ID)
	if handled.Load() != 0 || events.has("job:start") != 1 || r.Attempts != core.DefaultMaxAttempts {
		t.Fatalf("handler ran %d times, %d starts, attempts %d; want one run that fails for good", handled.Load(), events.has("job:start"), r.Attempts)
	}
	if msg := deref(r.LastError).(string); !strings.Contains(msg, `task "send_invoice": payload does not decode`) || !strings.Contains(msg, "cannot unmarshal number") {
		t.Fatalf("last_error %q does not name the task and the decode error", msg)
	}
}

func TestBatchItemsFailForGoodOrSnoozeOnTheirOwn(t *testing.T) {
	t.Parallel()
	// Items: "ok" succeeds, "bad" fails, "gone" fails for good, "later"
	// is snoozed for an hour.
	results := func(items []email) ([]error, error) {
		out := make([]error, len(items))
		for i, it := range items {
			switch it.To {
			case "bad":
				out[i] = errors.New("mailbox full")
			case "gone":
				out[i] = core.FailPermanently(errors.New("no such user"))
			case "later":
				out[i] = core.RetryAfter(time.Hour, errors.New("greylisted"))
			}
		}
		return out, nil
	}
	cases := []struct {
		name      string
		items     []email
		left      string
		attempts  int16
		dueAbout  time.Duration // 0: the backoff's few seconds
		lastError []string
	}{
		{"an ordinary failure retries what is not failed for good", []email{{"ok"}, {"bad"}, {"gone"}, {"later"}},
			`[{"to":"bad"},{"to":"later"}]`, 1, 0,
			[]string{"they will be retried alone", "[2] no such user (failed for good; not run again)", "[3] greylisted (snoozed for 1h0m0s"}},
		{"snoozed and dropped items snooze the job", []email{{"ok"}, {"gone"}, {"later"}},
			`[{"to":"later"}]`, 0, time.Hour,
			[]string{"run again after 1h0m0s", "[1] no such user (failed for good; not run again)", "[2] greylisted"}},
		{"items all failed for good fail the job for good", []email{{"ok"}, {"gone"}},
			`[{"to":"gone"}]`, core.DefaultMaxAttempts, -1,
			[]string{"failed for good", "[1] no such user"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			run := &batchRun{}
			w, _ := b.worker(t, core.WorkerOptions{Tasks: []core.Task{run.task(results)}})
			job, err := core.AddBatchJob(b.ctx, b.utils, c.items, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.RunOnce(b.ctx); err != nil {
				t.Fatal(err)
			}
			r := b.job(t, job.ID)
			mustJSONEqual(t, r.Payload, c.left)
			if r.Attempts != c.attempts || r.LockedBy != nil {
				t.Fatalf("attempts %d, locked_by %v; want %d, unlocked", r.Attempts, deref(r.LockedBy), c.attempts)
			}
			for _, want := range c.lastError {
				if !strings.Contains(deref(r.LastError).(string), want) {
					t.Fatalf("last_error %q lacks %q", deref(r.LastError), want)
				}
			}
			switch d := b.dueIn(t, job.ID); {
			case c.dueAbout > 0 && (d < c.dueAbout-time.Minute || d > c.dueAbout):
				t.Fatalf("due in %v, want about %v", d, c.dueAbout)
			case c.dueAbout == 0 && (d <= 0 || d > 10*time.Second):
				t.Fatalf("due in %v, want the first backoff (e^1 s)", d)
			case c.dueAbout < 0 && d > 0:
				t.Fatalf("due in %v; a job failed for good keeps its run_at", d)
			}
		})
	}
}

func TestSteeringErrorsAreFoundWithErrorsAs(t *testing.T) {
	t.Parallel()
	cause := errors.New("no such user")
	err := fmt.Errorf("wrapped: %w", core.FailPermanently(cause))
	var pe *core.PermanentError
	if !errors.As(err, &pe) || !errors.Is(err, cause) || err.Error() != "wrapped: no such user" {
		t.Fatalf("FailPermanently: As %v, Is %v, text %q", errors.As(err, &pe), errors.Is(err, cause), err)
	}
	var re *core.RetryAfterError
	if err := core.RetryAfter(time.Minute, nil); !errors.As(err, &re) || re.Delay != time.Minute {
		t.Fatalf("RetryAfter: %v", err)
	}
	bf := &core.BatchFailure{Items: []*core.ItemError{{Index: 3, Err: cause}}}
	var ie *core.ItemError
	if !errors.As(error(bf), &ie) || ie.Index != 3 || !errors.Is(bf, cause) {
		t.Fatalf("BatchFailure items: As %v, Is %v", errors.As(error(bf), &ie), errors.Is(bf, cause))
	}
}
