package faults

import (
	"testing"
	"time"
)

// The harness's own pieces, checked without a database.

func TestRunLineRoundTrip(t *testing.T) {
	t.Parallel()
	want := runLine{N: 42, JobID: 7, Attempts: 2, Worker: "run-a",
		Start: time.Unix(0, 1700000000123456789), End: time.Unix(0, 1700000000223456789), Outcome: outcomeFail,
		Fetched: time.Unix(0, 1700000000023456789)}
	got, err := parseRunLine(want.String())
	if err != nil || got != want {
		t.Fatalf("parseRunLine(%q) = %+v, %v; want %+v", want.String(), got, err, want)
	}
	if got, err := parseRunLine("1 2 1 run 4 5 ok 0"); err != nil || !got.Fetched.IsZero() {
		t.Errorf("a run line without a fetch time: %+v, %v", got, err)
	}
	for _, bad := range []string{"", "1 2 3 w 4 5 ok", "1 2 3 w 4 5 maybe 0", "x 2 3 w 4 5 ok 0"} {
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
