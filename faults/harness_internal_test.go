package faults

import (
	"strings"
	"testing"
	"time"
)

// The harness's own pieces, checked without a database.

func TestRunLineRoundTrip(t *testing.T) {
	t.Parallel()
	want := runLine{N: 42, JobID: 7, Attempts: 2, Worker: "run-a",
		Start: time.Unix(0, 1700000000123456789), End: time.Unix(0, 1700000000223456789), Outcome: outcomeFail,
		Fetched: time.Unix(0, 1700000000023456789), Received: time.Unix(0, 1700000000033456789)}
	got, err := parseRunLine(want.String())
	if err != nil || got != want {
		t.Fatalf("parseRunLine(%q) = %+v, %v; want %+v", want.String(), got, err, want)
	}
	if got, err := parseRunLine("1 2 1 run 4 5 ok 0 0"); err != nil || !got.Fetched.IsZero() || !got.Received.IsZero() {
		t.Errorf("a run line without fetch times: %+v, %v", got, err)
	}
	for _, bad := range []string{"", "1 2 3 w 4 5 ok 0", "1 2 3 w 4 5 maybe 0 0", "x 2 3 w 4 5 ok 0 0"} {
		if _, err := parseRunLine(bad); err == nil {
			t.Errorf("parseRunLine(%q) accepted it", bad)
		}
	}
}

func TestTagRows(t *testing.T) {
	t.Parallel()
	for tag, want := range map[string]int{"UPDATE 3": 3, "UPDATE 0": 0, "INSERT 0 5": 5, "COMMIT": 0, "": 0} {
		if got := tagRows(tag); got != want {
			t.Errorf("tagRows(%q) = %d, want %d", tag, got, want)
		}
	}
}

func TestClassifyWorkerSQL(t *testing.T) {
	t.Parallel()
	for sql, want := range map[string]string{
		"with candidates as (select ... for update skip locked) update x.j set attempts = j.attempts + 1":        "fetch",
		"with done as (delete from x._private_jobs as j ...) update x._private_job_queues":                       "complete",
		"with f as (...) update x._private_jobs set last_error = f.message, run_at = exp(least(j.attempts, 10))": "fail",
		"LISTEN \"jobs:insert\"": "",
		"select 1":               "",
	} {
		if got := classifyWorkerSQL(sql); got != want {
			t.Errorf("classifyWorkerSQL(%.40q...) = %q, want %q", sql, got, want)
		}
	}
}

// TestExplain checks the two excuses for a repeated run at their edges.
func TestExplain(t *testing.T) {
	t.Parallel()
	base := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return base.Add(time.Duration(ms) * time.Millisecond) }
	// The server is signalled at 0 and gone at 30 ms; wal_writer_delay
	// 200 ms makes fetches committed from -600 ms on forgettable.
	crashed := &scenario{crashes: []crash{{at: at(0), down: at(30), walWriterDelay: 200 * time.Millisecond}}}
	// b is SIGKILLed at 0.
	killed := &scenario{procs: []*proc{{spec: procSpec{name: "a"}}, {spec: procSpec{name: "b"}, killedAt: at(0)}}}
	run := func(worker string, attempt, fetched, received, start int) runLine {
		r := runLine{JobID: 1, Attempts: attempt, Worker: worker, Start: at(start), End: at(start + 5), Outcome: outcomeOK}
		if fetched != 0 || received != 0 {
			r.Fetched, r.Received = at(fetched), at(received)
		}
		return r
	}
	for _, c := range []struct {
		name      string
		s         *scenario
		prev, cur runLine
		excused   bool
		mechanism string
	}{
		{"fetch committed within the risk before the crash", crashed, run("a", 1, -500, -499, -499), run("a", 1, 900, 901, 901), true, "forgot the fetch"},
		{"fetch committed during the shutdown", crashed, run("b", 1, 20, 21, 21), run("a", 1, 900, 901, 901), true, "forgot the fetch"},
		{"fetch began before the risk, answered within it", crashed, run("a", 1, -700, -550, -550), run("a", 1, 900, 901, 901), true, "forgot the fetch"},
		{"fetch answered before the risk", crashed, run("a", 1, -700, -650, -100), run("a", 1, 900, 901, 901), false, ""},
		{"no fetch times: the run began before the risk", crashed, run("a", 1, 0, 0, -650), run("a", 1, 900, 901, 901), false, ""},
		{"no fetch times: the run began within the risk", crashed, run("a", 1, 0, 0, -550), run("a", 1, 900, 901, 901), true, "forgot the fetch"},
		{"fetch within the risk but remembered: one more attempt", crashed, run("a", 1, -100, -99, -99), run("a", 2, 900, 901, 901), false, ""},
		{"repeat before the server was down", crashed, run("a", 1, -100, -99, -99), run("a", 1, 25, 26, 26), false, ""},
		{"no crash", &scenario{}, run("a", 1, -100, -99, -99), run("a", 1, 900, 901, 901), false, ""},
		{"run of the killed worker, repeated after the kill", killed, run("b", 1, -300, -299, -299), run("a", 1, 5000, 5001, 5001), true, "SIGKILLed"},
		{"killed worker, one more attempt", killed, run("b", 1, -300, -299, -299), run("a", 2, 5000, 5001, 5001), false, ""},
		{"run of a worker that was not killed", killed, run("a", 1, -300, -299, -299), run("b", 1, -100, -99, -99), false, ""},
		{"repeat before the kill", killed, run("b", 1, -300, -299, -299), run("a", 1, -100, -99, -99), false, ""},
	} {
		why := c.s.explain(c.prev, c.cur)
		if (why != "") != c.excused || !strings.Contains(why, c.mechanism) {
			t.Errorf("%s: explain = %q, want excused %v naming %q", c.name, why, c.excused, c.mechanism)
		}
	}
}
