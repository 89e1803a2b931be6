package core_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/cronspec"
	"github.com/gworker/gworker/internal/clocktest"
	"github.com/gworker/gworker/internal/testkit"
)

// cronEvents records a runner's events.
type cronEvents struct {
	mu     sync.Mutex
	events []core.CronEvent
}

func (r *cronEvents) record(e core.CronEvent) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *cronEvents) of(kind core.CronEventKind) []core.CronEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []core.CronEvent
	for _, e := range r.events {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

// fired counts the jobs the runner says it added.
func (r *cronEvents) fired() int {
	n := 0
	for _, e := range r.of(core.CronScheduled) {
		n += len(e.Fired)
	}
	for _, e := range r.of(core.CronBackfill) {
		n += len(e.Fired)
	}
	return n
}

// cronRig is a test's cron set-up: a schema, a fake clock and the workers
// running on both.
type cronRig struct {
	*bundle
	clock   *clocktest.Clock
	workers int // running workers; each cron runner waits on one timer between minutes
}

func newCronRig(t *testing.T, start time.Time) *cronRig {
	t.Helper()
	return &cronRig{bundle: setup(t), clock: clocktest.New(start)}
}

// start runs a worker with the crontab (and opts) until the test ends, and
// waits until its cron runner waits for its first minute. The worker's only
// task is one no cron entry uses, so that cron jobs stay in the table.
func (r *cronRig) start(t *testing.T, crontab string, opts core.WorkerOptions) (*cronEvents, func() error) {
	t.Helper()
	ev := &cronEvents{}
	opts.Crontab = crontab
	opts.Clock = r.clock
	opts.Plugins = append(opts.Plugins, core.NewPlugin("cron events", core.Hooks{OnEvent: func(_ context.Context, e core.Event) {
		if ce, ok := e.(core.CronEvent); ok {
			ev.record(ce)
		}
	}}))
	opts.Tasks = []core.Task{core.RawTask("not_a_cron_task", func(context.Context, *core.Job) error { return nil })}
	w, _ := r.worker(t, opts)
	stop := runInBackground(t, w)
	r.workers++
	r.settle(t)
	return ev, func() error { r.workers--; return stop() }
}

// cronTimers returns when the cron runners' pending timers fire, earliest
// first. The fake clock carries the workers' other timers too (polls,
// heartbeats, sweeps), which tell nothing about cron.
func cronTimers(ts []clocktest.PendingTimer) []time.Time {
	var out []time.Time
	for _, p := range ts {
		if p.ArmedIn("core.(*cronRunner)") {
			out = append(out, p.At)
		}
	}
	return out
}

// settle waits until every running worker's cron runner waits on its
// timer: it is done with whatever the clock has reached. A runner waits on
// one timer at a time, and the one that fired is no longer pending.
func (r *cronRig) settle(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(r.ctx, testkit.DefaultWait)
	defer cancel()
	err := r.clock.WaitUntil(ctx, func(ts []clocktest.PendingTimer) bool { return len(cronTimers(ts)) >= r.workers })
	if err != nil {
		t.Fatalf("%d cron runners did not come to wait on their timers (pending: %v): %v", r.workers, cronTimers(r.clock.Timers()), err)
	}
}

// next returns when the earliest cron timer fires; the runners are
// settled.
func (r *cronRig) next(t *testing.T) time.Time {
	t.Helper()
	ts := cronTimers(r.clock.Timers())
	if len(ts) == 0 {
		t.Fatal("no cron runner waits on a timer")
	}
	return ts[0]
}

// to moves the clock on to t, and waits until the runners are done with
// every minute up to t.
func (r *cronRig) to(t *testing.T, to time.Time) {
	t.Helper()
	r.clock.AdvanceTo(to)
	r.settle(t)
}

// cronJob is a job read from the table, with its _cron payload key.
type cronJob struct {
	jobRow
	ts         string
	backfilled bool
}

func (r *cronRig) cronJobs(t *testing.T, task string) []cronJob {
	t.Helper()
	var out []cronJob
	for _, j := range r.jobs(t) {
		if j.Task != task {
			continue
		}
		var p struct {
			Cron *struct {
				TS         string `json:"ts"`
				Backfilled *bool  `json:"backfilled"`
			} `json:"_cron"`
		}
		if err := json.Unmarshal([]byte(j.Payload), &p); err != nil || p.Cron == nil || p.Cron.Backfilled == nil {
			t.Fatalf("job %d of %s has payload %s without _cron.ts and _cron.backfilled (%v)", j.ID, task, j.Payload, err)
		}
		out = append(out, cronJob{jobRow: j, ts: p.Cron.TS, backfilled: *p.Cron.Backfilled})
	}
	return out
}

// runAts returns the jobs' run_at as RFC 3339 UTC, checking that each
// agrees with its _cron.ts and has the wanted backfilled flag.
func runAts(t *testing.T, jobs []cronJob, backfilled bool) []string {
	t.Helper()
	var out []string
	for _, j := range jobs {
		if want := j.RunAt.UTC().Format("2006-01-02T15:04:05.000Z"); j.ts != want {
			t.Errorf("job %d: _cron.ts %q, want run_at %q", j.ID, j.ts, want)
		}
		if j.backfilled != backfilled {
			t.Errorf("job %d at %s: backfilled %v, want %v", j.ID, j.ts, j.backfilled, backfilled)
		}
		out = append(out, j.RunAt.UTC().Format(time.RFC3339))
	}
	return out
}

// knownCrontab is a row of _private_known_crontabs.
type knownCrontab struct {
	knownSince    time.Time
	lastExecution *time.Time
}

func (r *cronRig) known(t *testing.T) map[string]knownCrontab {
	t.Helper()
	rows, err := r.pool.Query(r.ctx, r.sql("select identifier, known_since, last_execution from S._private_known_crontabs"))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]knownCrontab{}
	for rows.Next() {
		var id string
		var k knownCrontab
		if err := rows.Scan(&id, &k.knownSince, &k.lastExecution); err != nil {
			t.Fatal(err)
		}
		out[id] = k
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// minutes lists the minutes from..to (inclusive) every step, as RFC 3339.
func minutes(from, to time.Time, step time.Duration) []string {
	var out []string
	for m := from; !m.After(to); m = m.Add(step) {
		out = append(out, m.UTC().Format(time.RFC3339))
	}
	return out
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func TestCronFiresOnTimeWithCronPayloadAndJobOptions(t *testing.T) {
	t.Parallel()
	start := utc("2024-01-02T03:03:30Z")
	r := newCronRig(t, start)
	even, err := cronspec.EveryNMinutes(2, "plain").ID("even_minutes").Entry()
	if err != nil {
		t.Fatal(err)
	}
	ev, _ := r.start(t, `
# every minute, with every job option
* * * * * opts ?queue=cron_q&priority=3&max=7 {a: 1, s: '<x>', nested: {b: [1, 2,],},}
* * * * * keeps_place {a: 1, _cron: 'replaced', z: 2}
`, core.WorkerOptions{Schedules: []cronspec.Entry{even}})

	// Registration: the entries are known from the start, never executed.
	known := r.known(t)
	for _, id := range []string{"opts", "keeps_place", "even_minutes"} {
		k, ok := known[id]
		if !ok || !k.knownSince.Equal(start) || k.lastExecution != nil {
			t.Errorf("known_crontabs[%s] = %+v (present %v), want known_since %v and no last_execution", id, k, ok, start)
		}
	}
	if jobs := r.jobs(t); len(jobs) != 0 {
		t.Fatalf("%d jobs before the first minute, want none: %+v", len(jobs), jobs)
	}
	if next := r.next(t); !next.Equal(utc("2024-01-02T03:04:00Z")) {
		t.Fatalf("the runner waits until %v, want the next whole minute 03:04", next)
	}

	r.to(t, utc("2024-01-02T03:04:00Z"))
	r.to(t, utc("2024-01-02T03:05:00Z"))

	opts := r.cronJobs(t, "opts")
	if got, want := runAts(t, opts, false), minutes(utc("2024-01-02T03:04:00Z"), utc("2024-01-02T03:05:00Z"), time.Minute); !slices.Equal(got, want) {
		t.Fatalf("opts fired at %v, want %v", got, want)
	}
	j := opts[0]
	if deref(j.Queue) != "cron_q" || j.Priority != 3 || j.MaxAttempts != 7 || j.Key != nil || j.Attempts != 0 || j.Flags != nil {
		t.Errorf("opts job: queue %v, priority %d, max attempts %d, key %v, attempts %d, flags %v; want cron_q, 3, 7, none, 0, none",
			deref(j.Queue), j.Priority, j.MaxAttempts, deref(j.Key), j.Attempts, deref(j.Flags))
	}
	// The payload is the entry's, with _cron added last, as
	// {...payload, _cron: {ts, backfilled}} gives it in JavaScript.
	if want := `{"a":1,"s":"<x>","nested":{"b":[1,2]},"_cron":{"ts":"2024-01-02T03:04:00.000Z","backfilled":false}}`; j.Payload != want {
		t.Errorf("opts payload\n %s\nwant\n %s", j.Payload, want)
	}
	// A payload's own _cron key is replaced where it stands.
	kp := r.cronJobs(t, "keeps_place")
	if want := `{"a":1,"_cron":{"ts":"2024-01-02T03:04:00.000Z","backfilled":false},"z":2}`; len(kp) != 2 || kp[0].Payload != want {
		t.Errorf("keeps_place jobs %+v, want 2, the first with payload %s", kp, want)
	}
	// No payload: _cron alone. Defaults: no queue, priority 0, 25 attempts.
	plain := r.cronJobs(t, "plain")
	if got := runAts(t, plain, false); !slices.Equal(got, []string{"2024-01-02T03:04:00Z"}) {
		t.Fatalf("even_minutes fired at %v, want 03:04 only", got)
	}
	if p := plain[0]; p.Payload != `{"_cron":{"ts":"2024-01-02T03:04:00.000Z","backfilled":false}}` ||
		p.Queue != nil || p.Priority != 0 || p.MaxAttempts != 25 {
		t.Errorf("even_minutes job: payload %s, queue %v, priority %d, max attempts %d", p.Payload, deref(p.Queue), p.Priority, p.MaxAttempts)
	}

	known = r.known(t)
	for id, want := range map[string]string{"opts": "03:05", "keeps_place": "03:05", "even_minutes": "03:04"} {
		le := known[id].lastExecution
		if le == nil || !le.Equal(utc("2024-01-02T"+want+":00Z")) || !known[id].knownSince.Equal(start) {
			t.Errorf("known_crontabs[%s]: last_execution %v, known_since %v; want %s and %v", id, le, known[id].knownSince, want, start)
		}
	}

	// Events: started once; each minute scheduled and ticked.
	if n := len(ev.of(core.CronStarted)); n != 1 {
		t.Errorf("%d cron:started events, want 1", n)
	}
	ticks := ev.of(core.CronTick)
	if len(ticks) != 2 || !ticks[0].Minute.Equal(utc("2024-01-02T03:04:00Z")) || !ticks[1].Minute.Equal(utc("2024-01-02T03:05:00Z")) {
		t.Fatalf("ticks %+v, want 03:04 and 03:05", ticks)
	}
	sched := ev.of(core.CronScheduled)
	if len(sched) != 2 || !slices.Equal(sched[0].Fired, []string{"opts", "keeps_place", "even_minutes"}) ||
		!slices.Equal(sched[1].Entries, []string{"opts", "keeps_place"}) {
		t.Errorf("cron:scheduled events %+v", sched)
	}
	if n := len(ev.of(core.CronBackfill)) + len(ev.of(core.CronOverdueTimer)) + len(ev.of(core.CronPrematureTimer)) + len(ev.of(core.CronError)); n != 0 {
		t.Errorf("%d unexpected back-fill, timer or error events", n)
	}
}

func TestCronTimeZoneEntryFiresAtTheZonesWallClock(t *testing.T) {
	t.Parallel()
	r := newCronRig(t, utc("2024-07-01T07:28:10Z"))
	r.start(t, "30 9 * * * paris ?tz=Europe/Paris\n30 9 * * * utc\n", core.WorkerOptions{})
	r.to(t, utc("2024-07-01T07:31:00Z"))
	// 09:30 in Paris in July is 07:30 UTC; ts is the UTC instant.
	if got := runAts(t, r.cronJobs(t, "paris"), false); !slices.Equal(got, []string{"2024-07-01T07:30:00Z"}) {
		t.Errorf("paris fired at %v, want 07:30 UTC", got)
	}
	if got := r.cronJobs(t, "utc"); len(got) != 0 {
		t.Errorf("utc fired %d times before 09:30 UTC", len(got))
	}
}

func TestCronTwoWorkersFireEachMinuteOnce(t *testing.T) {
	t.Parallel()
	start := utc("2024-01-02T03:03:59Z")
	r := newCronRig(t, start)
	const crontab = `
* * * * * every_minute
*/2 * * * * every_two {n: 2}
*/3 * * * * every_three ?jobKey=three
`
	ev1, _ := r.start(t, crontab, core.WorkerOptions{})
	ev2, _ := r.start(t, crontab, core.WorkerOptions{})
	end := utc("2024-01-02T03:24:00Z")
	for m := utc("2024-01-02T03:04:00Z"); !m.After(end); m = m.Add(time.Minute) {
		r.to(t, m) // both runners wake together and race for the minute
	}

	all := minutes(utc("2024-01-02T03:04:00Z"), end, time.Minute)
	if got := runAts(t, r.cronJobs(t, "every_minute"), false); !slices.Equal(got, all) {
		t.Errorf("every_minute fired at\n %v\nwant each minute once:\n %v", got, all)
	}
	if got, want := runAts(t, r.cronJobs(t, "every_two"), false), minutes(utc("2024-01-02T03:04:00Z"), end, 2*time.Minute); !slices.Equal(got, want) {
		t.Errorf("every_two fired at %v, want %v", got, want)
	}
	// every_three has a job key, so one job remains; its revision counts
	// the minutes that replaced it: 03:06, 03:09, ... 03:24 is 7 minutes.
	three := r.cronJobs(t, "every_three")
	if len(three) != 1 || three[0].ts != "2024-01-02T03:24:00.000Z" || three[0].Revision != 6 {
		t.Errorf("every_three: %+v, want one job for 03:24 at revision 6", three)
	}
	wantFired := len(all) + len(minutes(utc("2024-01-02T03:04:00Z"), end, 2*time.Minute)) + 7
	if f1, f2 := ev1.fired(), ev2.fired(); f1+f2 != wantFired {
		t.Errorf("the runners fired %d + %d jobs, want %d in all", f1, f2, wantFired)
	}
	// Both runners took part in every minute; each reports its ticks.
	if n1, n2 := len(ev1.of(core.CronTick)), len(ev2.of(core.CronTick)); n1 != len(all) || n2 != len(all) {
		t.Errorf("ticks %d and %d, want %d each", n1, n2, len(all))
	}
}

func TestCronBackfillsKnownEntriesWithinFill(t *testing.T) {
	t.Parallel()
	// Started half a minute past 12:00: minutes before 12:00:30 are
	// back-filled (12:00 included), and the main loop starts at 12:01.
	start := utc("2024-03-10T12:00:30Z")
	r := newCronRig(t, start)
	seed := func(id string, knownSince time.Time, lastExecution *time.Time) {
		r.exec(t, "insert into S._private_known_crontabs (identifier, known_since, last_execution) values ($1, $2, $3)",
			id, knownSince, lastExecution)
	}
	longAgo := utc("2024-01-01T00:00:00Z")
	seed("last_5h_fill_6h", longAgo, ptr(utc("2024-03-10T07:00:00Z")))
	seed("last_25h_fill_1d2h", longAgo, ptr(utc("2024-03-09T11:00:00Z")))
	seed("last_25h_fill_6h", longAgo, ptr(utc("2024-03-09T11:00:00Z")))
	seed("long_ago_fill_5h", longAgo, ptr(longAgo))
	seed("known_since_only", utc("2024-03-10T09:30:00Z"), nil)
	seed("no_fill", longAgo, ptr(longAgo))
	seed("minutely", longAgo, ptr(utc("2024-03-10T11:57:00Z")))
	ev, _ := r.start(t, `
0 * * * * last_5h_fill_6h ?fill=6h
0 * * * * last_25h_fill_1d2h ?fill=1d2h
0 * * * * last_25h_fill_6h ?fill=6h
0 * * * * long_ago_fill_5h ?fill=5h
0 * * * * known_since_only ?fill=1w
0 * * * * no_fill
0 * * * * new_entry ?fill=1w
* * * * * minutely ?fill=10m
`, core.WorkerOptions{})
	ids := []string{"last_5h_fill_6h", "last_25h_fill_1d2h", "last_25h_fill_6h", "long_ago_fill_5h",
		"known_since_only", "no_fill", "new_entry", "minutely"}

	// Each entry's task is named after it.
	byEntry := map[string][]string{}
	for _, id := range ids {
		byEntry[id] = runAts(t, r.cronJobs(t, id), true)
	}
	hours := func(from, to string) []string { return minutes(utc(from), utc(to), time.Hour) }
	want := map[string][]string{
		// 5h since the last execution, fill 6h: the 5 hours after it.
		"last_5h_fill_6h": hours("2024-03-10T08:00:00Z", "2024-03-10T12:00:00Z"),
		// 25h since the last execution, fill 1d2h: all 25.
		"last_25h_fill_1d2h": hours("2024-03-09T12:00:00Z", "2024-03-10T12:00:00Z"),
		// 25h since, but fill 6h: only those within 6h of the start.
		"last_25h_fill_6h": hours("2024-03-10T07:00:00Z", "2024-03-10T12:00:00Z"),
		// fill 5h: 07:00 is 5h00m30s before the start, out of reach.
		"long_ago_fill_5h": hours("2024-03-10T08:00:00Z", "2024-03-10T12:00:00Z"),
		// Never executed: from known_since on.
		"known_since_only": hours("2024-03-10T10:00:00Z", "2024-03-10T12:00:00Z"),
		"minutely":         minutes(utc("2024-03-10T11:58:00Z"), utc("2024-03-10T12:00:00Z"), time.Minute),
	}
	fired := 0
	for id, w := range want {
		if !slices.Equal(byEntry[id], w) {
			t.Errorf("%s back-filled\n %v\nwant\n %v", id, byEntry[id], w)
		}
		fired += len(w)
	}
	if len(byEntry["no_fill"]) != 0 || len(byEntry["new_entry"]) != 0 {
		t.Errorf("no_fill back-filled %v and new_entry %v, want nothing", byEntry["no_fill"], byEntry["new_entry"])
	}
	// Back-fill is serial and in time order, one statement per minute, and
	// the events report what the table holds.
	var prev time.Time
	for _, e := range ev.of(core.CronBackfill) {
		if !e.Minute.After(prev) {
			t.Errorf("back-fill went from %v to %v", prev, e.Minute)
		}
		prev = e.Minute
		if !slices.Equal(e.Entries, e.Fired) {
			t.Errorf("back-fill of %v: due %v but fired %v", e.Minute, e.Entries, e.Fired)
		}
	}
	if n := ev.fired(); n != fired {
		t.Errorf("cron:backfill events report %d jobs, want %d", n, fired)
	}
	if n := len(ev.of(core.CronBackfill)); n != 25+2 {
		t.Errorf("%d back-filled minutes, want 27 (25 hours, and 11:58 and 11:59)", n)
	}
	known := r.known(t)
	if k := known["new_entry"]; !k.knownSince.Equal(start) || k.lastExecution != nil {
		t.Errorf("new_entry registered as %+v, want known_since %v and no last execution", k, start)
	}
	for id := range want {
		if le := known[id].lastExecution; le == nil || !le.Equal(utc("2024-03-10T12:00:00Z")) {
			t.Errorf("%s: last_execution %v after back-fill, want 12:00", id, le)
		}
	}

	// The main loop goes on at 12:01, not back-filled.
	r.to(t, utc("2024-03-10T13:00:00Z"))
	for _, id := range ids {
		jobs := r.cronJobs(t, id)
		live := runAts(t, jobs[len(byEntry[id]):], false)
		want := []string{"2024-03-10T13:00:00Z"}
		if id == "minutely" {
			want = minutes(utc("2024-03-10T12:01:00Z"), utc("2024-03-10T13:00:00Z"), time.Minute)
		}
		if !slices.Equal(live, want) {
			t.Errorf("%s fired at %v after back-fill, want %v", id, live, want)
		}
	}
}

func TestCronClockJumpForwardCatchesUpEveryMissedMinute(t *testing.T) {
	t.Parallel()
	r := newCronRig(t, utc("2024-01-02T03:03:30Z"))
	ev, _ := r.start(t, "* * * * * every_minute\n*/30 * * * * half_hourly ?fill=1h\n", core.WorkerOptions{})
	r.to(t, utc("2024-01-02T03:04:00Z"))

	// The wall clock jumps 3 hours ahead while the runner waits for 03:05;
	// its timer fires on time (elapsed time), and it finds itself late.
	r.clock.Set(utc("2024-01-02T06:04:15Z"))
	if next := r.next(t); !next.Equal(utc("2024-01-02T06:05:15Z")) {
		t.Fatalf("after the jump the runner's timer fires at %v, want a minute after 03:04, at 06:05:15", next)
	}
	r.to(t, utc("2024-01-02T06:05:15Z"))

	want := minutes(utc("2024-01-02T03:04:00Z"), utc("2024-01-02T06:05:00Z"), time.Minute)
	if got := runAts(t, r.cronJobs(t, "every_minute"), false); !slices.Equal(got, want) {
		t.Errorf("every_minute fired at %d minutes, want each of the %d from 03:04 to 06:05 once", len(got), len(want))
	}
	// Catching up is not back-filling: backfilled is false.
	if got, want := runAts(t, r.cronJobs(t, "half_hourly"), false), minutes(utc("2024-01-02T03:30:00Z"), utc("2024-01-02T06:00:00Z"), 30*time.Minute); !slices.Equal(got, want) {
		t.Errorf("half_hourly fired at %v, want %v", got, want)
	}
	over := ev.of(core.CronOverdueTimer)
	if len(over) != 1 || !over[0].Minute.Equal(utc("2024-01-02T03:05:00Z")) {
		t.Errorf("overdue events %+v, want one for 03:05", over)
	}
	if next := r.next(t); !next.Equal(utc("2024-01-02T06:06:00Z")) {
		t.Errorf("after catching up the runner waits until %v, want 06:06", next)
	}
}

func TestCronClockSetBackWaitsWithoutDuplicates(t *testing.T) {
	t.Parallel()
	r := newCronRig(t, utc("2024-01-02T03:03:30Z"))
	ev, stop := r.start(t, "* * * * * every_minute\n", core.WorkerOptions{})
	r.to(t, utc("2024-01-02T03:04:00Z"))
	r.to(t, utc("2024-01-02T03:05:00Z"))

	// The wall clock is set back an hour while the runner waits for 03:06.
	// Its timer fires after the minute it was set for, when the clock reads
	// 02:06: too early. It waits again, until the clock reads 03:06.
	r.clock.Set(utc("2024-01-02T02:05:00Z"))
	r.to(t, r.next(t))
	if got := len(r.cronJobs(t, "every_minute")); got != 2 {
		t.Errorf("%d jobs after the clock went back, want the 2 from before", got)
	}
	pre := ev.of(core.CronPrematureTimer)
	if len(pre) != 1 || !pre[0].Minute.Equal(utc("2024-01-02T03:06:00Z")) || !pre[0].Now.Equal(utc("2024-01-02T02:06:00Z")) {
		t.Errorf("premature timer events %+v, want one for 03:06 at 02:06", pre)
	}
	if next := r.next(t); !next.Equal(utc("2024-01-02T03:06:00Z")) {
		t.Errorf("the runner waits until %v, want 03:06", next)
	}
	r.to(t, utc("2024-01-02T03:06:00Z"))
	want := minutes(utc("2024-01-02T03:04:00Z"), utc("2024-01-02T03:06:00Z"), time.Minute)
	if got := runAts(t, r.cronJobs(t, "every_minute"), false); !slices.Equal(got, want) {
		t.Errorf("every_minute fired at %v, want %v", got, want)
	}

	// A worker that starts while the clock is behind the last execution
	// (another machine's clock, say) fires nothing until it passes it:
	// known_crontabs.last_execution only moves forward.
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	r.clock.Set(utc("2024-01-02T02:59:30Z"))
	ev2, _ := r.start(t, "* * * * * every_minute\n", core.WorkerOptions{})
	r.to(t, utc("2024-01-02T03:00:00Z"))
	r.to(t, utc("2024-01-02T03:01:00Z"))
	if got := runAts(t, r.cronJobs(t, "every_minute"), false); !slices.Equal(got, want) {
		t.Errorf("after a restart behind the last execution, every_minute fired at %v, want still %v", got, want)
	}
	for _, e := range ev2.of(core.CronScheduled) {
		if len(e.Fired) != 0 {
			t.Errorf("minute %v fired %v, want nothing", e.Minute, e.Fired)
		}
	}
	if n := len(ev2.of(core.CronScheduled)); n != 2 {
		t.Errorf("%d cron:scheduled events, want 2 (03:00 and 03:01, both deduplicated)", n)
	}
}

func TestCronJobKeyOptions(t *testing.T) {
	t.Parallel()
	r := newCronRig(t, utc("2024-01-02T03:03:30Z"))
	r.start(t, `
* * * * * keyed ?id=replacing&jobKey=replace_key
* * * * * keyed ?id=preserving&jobKey=preserve_key&jobKeyMode=preserve_run_at
`, core.WorkerOptions{})
	r.to(t, utc("2024-01-02T03:04:00Z"))
	r.to(t, utc("2024-01-02T03:05:00Z"))
	r.to(t, utc("2024-01-02T03:06:00Z"))

	byKey := map[string]cronJob{}
	jobs := r.cronJobs(t, "keyed")
	for _, j := range jobs {
		byKey[deref(j.Key).(string)] = j
	}
	if len(jobs) != 2 || len(byKey) != 2 {
		t.Fatalf("%d jobs with keys %v, want one per key", len(jobs), byKey)
	}
	// replace: the latest minute's payload and run_at.
	if j := byKey["replace_key"]; j.ts != "2024-01-02T03:06:00.000Z" || !j.RunAt.Equal(utc("2024-01-02T03:06:00Z")) || j.Revision != 2 {
		t.Errorf("replace_key: ts %s, run_at %v, revision %d; want 03:06, 03:06, 2", j.ts, j.RunAt, j.Revision)
	}
	// preserve_run_at: the latest payload, the first run_at.
	if j := byKey["preserve_key"]; j.ts != "2024-01-02T03:06:00.000Z" || !j.RunAt.Equal(utc("2024-01-02T03:04:00Z")) || j.Revision != 2 {
		t.Errorf("preserve_key: ts %s, run_at %v, revision %d; want 03:06, 03:04, 2", j.ts, j.RunAt, j.Revision)
	}
}

func TestCronRestartsAfterErrorsAndBackfills(t *testing.T) {
	t.Parallel()
	r := newCronRig(t, utc("2024-01-02T03:03:30Z"))
	ev, _ := r.start(t, "* * * * * filled ?fill=1h\n* * * * * unfilled\n", core.WorkerOptions{})
	r.to(t, utc("2024-01-02T03:04:00Z"))

	// Scheduling 03:05 fails: the table is gone for a moment.
	r.exec(t, "alter table S._private_known_crontabs rename to known_crontabs_away")
	r.clock.AdvanceTo(utc("2024-01-02T03:05:00Z"))
	r.settle(t) // the runner waits on its retry delay
	errs := ev.of(core.CronError)
	if len(errs) != 1 || errs[0].Err == nil || !strings.Contains(errs[0].Err.Error(), "schedule 2024-01-02T03:05:00.000Z") ||
		errs[0].Delay <= 0 || errs[0].Delay > time.Second {
		t.Fatalf("cron:error events %+v, want one for 03:05 with a delay of at most 1s", errs)
	}
	if next := r.next(t); !next.Equal(errs[0].Now.Add(errs[0].Delay)) {
		t.Fatalf("the runner waits until %v, want the end of the first delay, %v", next, errs[0].Now.Add(errs[0].Delay))
	}
	// The next attempt fails too, and waits longer.
	r.to(t, r.next(t))
	if errs = ev.of(core.CronError); len(errs) != 2 || errs[1].Delay <= time.Second || errs[1].Delay > 2*time.Second {
		t.Fatalf("cron:error events %+v, want a second one with a delay in (1s, 2s]", errs)
	}

	// Back: the restart back-fills 03:05 for the entry with a fill period;
	// the other one, like graphile-worker's, loses that minute.
	r.exec(t, "alter table S.known_crontabs_away rename to _private_known_crontabs")
	r.to(t, r.next(t))
	if n := len(ev.of(core.CronStarted)); n != 2 {
		t.Errorf("%d cron:started events, want 2", n)
	}
	r.to(t, utc("2024-01-02T03:06:00Z"))

	filled := r.cronJobs(t, "filled")
	if len(filled) != 3 || filled[0].ts != "2024-01-02T03:04:00.000Z" || filled[0].backfilled ||
		filled[1].ts != "2024-01-02T03:05:00.000Z" || !filled[1].backfilled ||
		filled[2].ts != "2024-01-02T03:06:00.000Z" || filled[2].backfilled {
		t.Errorf("filled jobs %+v, want 03:04, 03:05 (back-filled), 03:06", filled)
	}
	if got := runAts(t, r.cronJobs(t, "unfilled"), false); !slices.Equal(got, []string{"2024-01-02T03:04:00Z", "2024-01-02T03:06:00Z"}) {
		t.Errorf("unfilled fired at %v, want 03:04 and 03:06", got)
	}
}

func TestCronDoesNotRunInRunOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	w, _ := b.worker(t, core.WorkerOptions{Crontab: "* * * * * c\n",
		Tasks: []core.Task{core.RawTask("t", func(context.Context, *core.Job) error { return nil })}})
	if err := w.RunOnce(b.ctx); err != nil {
		t.Fatal(err)
	}
	if n := b.queryInt(t, "select count(*) from S._private_known_crontabs"); n != 0 {
		t.Errorf("RunOnce registered %d crontab entries, want none", n)
	}
}

func TestNewWorkerRejectsInvalidCronOptions(t *testing.T) {
	t.Parallel()
	b := setupUnmigrated(t)
	task := core.RawTask("t", func(context.Context, *core.Job) error { return nil })
	newWorker := func(crontab string, schedules ...cronspec.Entry) error {
		_, err := core.NewWorker(core.WorkerOptions{Database: b.db, Tasks: []core.Task{task}, Crontab: crontab, Schedules: schedules})
		return err
	}

	err := newWorker("0 4 * * * fine\n0 24 * * * bad_hour\n* * * * * x ?max=0\n")
	var perr *cronspec.ParseError
	if !errors.As(err, &perr) || len(perr.Errors) != 2 || perr.Errors[0].Line != 2 || perr.Errors[1].Line != 3 {
		t.Fatalf("NewWorker with a bad crontab: %v; want a *cronspec.ParseError for lines 2 and 3", err)
	}
	if !errors.Is(err, core.ErrInvalidInput) || !strings.Contains(err.Error(), "WorkerOptions.Crontab") ||
		!strings.Contains(err.Error(), "line 2, column 3: ") {
		t.Errorf("error %q does not name WorkerOptions.Crontab and the place, or is not ErrInvalidInput", err)
	}

	daily, _ := cronspec.DailyAt(4, 0, "fine").Entry()
	other, _ := cronspec.DailyAt(5, 0, "other").Entry()
	err = newWorker("0 4 * * * fine\n", other, daily, other)
	var ve *core.ValidationError
	if !errors.As(err, &ve) || !strings.Contains(err.Error(), "WorkerOptions.Schedules[1]") || !strings.Contains(err.Error(), "Crontab line 1") ||
		!strings.Contains(err.Error(), "WorkerOptions.Schedules[2]") || !strings.Contains(err.Error(), "also Schedules[0]") {
		t.Errorf("duplicate identifiers: %v", err)
	}

	bad := daily
	bad.Options.MaxAttempts = -1
	if err := newWorker("", bad); !errors.As(err, &ve) || !strings.Contains(err.Error(), "WorkerOptions.Schedules[0]") ||
		!strings.Contains(err.Error(), "max attempts -1") {
		t.Errorf("invalid typed entry: %v", err)
	}
	if err := newWorker("# just a comment\n\n", daily); err != nil {
		t.Errorf("valid cron options: %v", err)
	}
}
