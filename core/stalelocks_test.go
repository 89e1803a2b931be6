package core_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/internal/clocktest"
)

// staleReset names the stale-lock reset's timers, for ArmedIn.
const staleReset = "core.(*staleLockReset)"

// resetStatement is how the switchDB keys the reset's statement (its first
// three words).
const resetStatement = "with stale_jobs as"

// While the database is away, the stale-lock reset says so once, retries
// on the worker's clock with a growing backoff (neither at once nor only
// after its 8-10 minute period), and says once that it works again. A
// reset that frees locks older than 4 hours logs how many jobs and queues
// it freed, and leaves younger locks alone; one that frees nothing is
// quiet.
func TestStaleLockResetOutageAndFreedCounts(t *testing.T) {
	t.Parallel()
	b := setup(t)
	db := newSwitchDB(b.db)
	clock := clocktest.New(time.Now())
	w, sink := b.worker(t, core.WorkerOptions{Database: db, Clock: clock,
		Tasks: []core.Task{core.RawTask("t", func(context.Context, *core.Job) error { return nil })}})
	dump := func() string { return strings.Join(sinkRecs(sink), "\n") }
	runInBackground(t, w)

	// The reset's first run is pending once the worker runs; the database
	// goes away before it.
	pendingTimer(t, clock, staleReset)
	db.down.Store(true)
	last := fireNext(t, clock, staleReset)
	const tries = 12
	var gaps []time.Duration
	for len(gaps) < tries-1 {
		at := fireNext(t, clock, staleReset)
		gaps = append(gaps, at.Sub(last))
		last = at
	}
	// Each fired timer was one try, no more: the reset does not retry by
	// itself between its timers.
	pendingTimer(t, clock, staleReset)
	if n := db.refusals(resetStatement); n != tries {
		t.Fatalf("%d resets were refused over %d timers, want one each", n, tries)
	}
	for i, gap := range gaps {
		// After the (i+1)th failure: at least half of 100ms doubled
		// i+1 times, until the cap of a minute.
		floor := min((100*time.Millisecond<<(i+1))/2, 30*time.Second)
		if gap < floor || gap > time.Minute {
			t.Fatalf("retry %d came %v after the one before, want between %v and 1m; all: %v", i+1, gap, floor, gaps)
		}
	}
	if n := countRecs(sink, "WARN gworker: freeing stale locks failed"); n != 1 {
		t.Fatalf("%d warnings about the reset for one outage, want 1:\n%s", n, dump())
	}
	if sink.has("freeing stale locks works again") {
		t.Fatalf("the outage was said to be over while it lasted:\n%s", dump())
	}

	// Locks a crashed worker left: a job and its queue, 5 hours ago; and
	// a live worker's job and queue, locked an hour ago. The jobs are of a
	// task this worker does not run, so that it leaves them be.
	stale := b.add(t, "elsewhere", nil, &core.JobSpec{QueueName: "stale-q"})
	recent := b.add(t, "elsewhere", nil, &core.JobSpec{QueueName: "recent-q"})
	b.exec(t, `update S._private_jobs set locked_at = now() - interval '5 hours', locked_by = 'crashed', attempts = 1,
		run_at = now() - interval '6 hours' where id = $1`, stale.ID)
	b.exec(t, `update S._private_job_queues set locked_at = now() - interval '5 hours', locked_by = 'crashed' where queue_name = 'stale-q'`)
	b.exec(t, "update S._private_jobs set locked_at = now() - interval '1 hour', locked_by = 'alive' where id = $1", recent.ID)
	b.exec(t, `update S._private_job_queues set locked_at = now() - interval '1 hour', locked_by = 'alive' where queue_name = 'recent-q'`)

	db.down.Store(false)
	back := fireNext(t, clock, staleReset)
	// Back on its regular period once it works.
	next := pendingTimer(t, clock, staleReset)
	if d := next.Sub(back); d < core.DefaultMinResetLockedInterval || d > core.DefaultMaxResetLockedInterval {
		t.Fatalf("the next reset after a successful one is due in %v, want 8-10m", d)
	}
	if n := countRecs(sink, "INFO gworker: freeing stale locks works again"); n != 1 {
		t.Fatalf("%d lines say the reset works again, want 1:\n%s", n, dump())
	}
	if n := countRecs(sink, "INFO gworker: freed locks older than 4 hours"); n != 1 {
		t.Fatalf("%d lines say locks were freed, want 1:\n%s", n, dump())
	}
	for _, r := range sinkRecs(sink) {
		if strings.Contains(r, "freed locks older than 4 hours") && (!strings.Contains(r, " jobs=1") || !strings.Contains(r, " queues=1")) {
			t.Fatalf("the freeing line does not count 1 job and 1 queue: %s", r)
		}
	}
	if j := b.job(t, stale.ID); j.LockedAt != nil || j.LockedBy != nil || j.RunAt.Before(b.dbNow(t).Add(-time.Minute)) {
		t.Fatalf("stale job after the reset: locked_at %v locked_by %v run_at %v; want unlocked and due now",
			deref(j.LockedAt), deref(j.LockedBy), j.RunAt)
	}
	if j := b.job(t, recent.ID); deref(j.LockedBy) != "alive" {
		t.Fatalf("a job locked an hour ago was freed: locked_by %v", deref(j.LockedBy))
	}
	if n := b.queryInt(t, "select count(*) from S._private_job_queues where queue_name = 'stale-q' and locked_by is null and locked_at is null"); n != 1 {
		t.Fatal("the queue locked 5 hours ago is still locked")
	}
	if n := b.queryInt(t, "select count(*) from S._private_job_queues where queue_name = 'recent-q' and locked_by = 'alive'"); n != 1 {
		t.Fatal("the queue locked an hour ago was freed")
	}

	// A reset that finds nothing says nothing.
	fireNext(t, clock, staleReset)
	pendingTimer(t, clock, staleReset)
	if n := countRecs(sink, "freed locks older than 4 hours"); n != 1 {
		t.Fatalf("a reset that freed nothing logged it (%d lines):\n%s", n, dump())
	}
	if countRecs(sink, "WARN gworker: freeing stale locks") != 1 || countRecs(sink, "freeing stale locks works again") != 1 {
		t.Fatalf("the reset's outage was not logged as one warning and one recovery line:\n%s", dump())
	}
}
