package main

import (
	"math"
	"strings"
	"testing"
)

func TestPercentileInterpolatesBetweenRanks(t *testing.T) {
	t.Parallel()
	xs := []float64{5, 1, 4, 2, 3}
	for _, tc := range []struct{ p, want float64 }{{0, 1}, {50, 3}, {100, 5}, {25, 2}, {99, 4.96}} {
		if got := percentile(xs, tc.p); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("percentile(%v) = %v, want %v", tc.p, got, tc.want)
		}
	}
	if got := median([]float64{1, 2, 3, 4}); got != 2.5 {
		t.Errorf("median of 1..4 = %v, want 2.5", got)
	}
	if !math.IsNaN(median(nil)) {
		t.Error("median of nothing is not NaN")
	}
	if xs[0] != 5 {
		t.Error("percentile sorted its input in place")
	}
}

func TestParseResultReadsTheDrainLine(t *testing.T) {
	t.Parallel()
	jobs, secs, err := parseResult("some log\njobs=200000 seconds=4.250 jobs_per_sec=47059\n")
	if err != nil || jobs != 200000 || secs != 4.25 {
		t.Fatalf("got %d, %v, %v", jobs, secs, err)
	}
	for _, bad := range []string{"", "jobs=1 seconds=0.000 jobs_per_sec=0\n", "jobs=x seconds=1 jobs_per_sec=1\n"} {
		if _, _, err := parseResult(bad); err == nil {
			t.Errorf("parseResult(%q) accepted it", bad)
		}
	}
	ms, err := parseLatencies("latency_ms=1.5,2,0.25\n")
	if err != nil || len(ms) != 3 || ms[2] != 0.25 {
		t.Fatalf("parseLatencies: %v, %v", ms, err)
	}
}

func TestBindReplacesEveryPlaceholderOrFails(t *testing.T) {
	t.Parallel()
	got, err := bind("select $1, $2, $10, $1", map[int]string{1: "'a'", 2: "2", 10: "ten"})
	if err != nil || got != "select 'a', 2, ten, 'a'" {
		t.Fatalf("bind = %q, %v", got, err)
	}
	if _, err := bind("select $3", map[int]string{1: "x"}); err == nil || !strings.Contains(err.Error(), "$3") {
		t.Fatalf("bind with a missing value: %v", err)
	}
	if s, err := literal([]int64{3, 4}); err != nil || s != "'{3,4}'" {
		t.Fatalf("literal = %q, %v", s, err)
	}
	if s, _ := literal("it's"); s != "'it''s'" {
		t.Fatalf("literal quotes = %q", s)
	}
	if s, err := literal([]string{"noop", "it's"}); err != nil || s != "array['noop','it''s']" {
		t.Fatalf("literal = %q, %v", s, err)
	}
}

func TestPgbenchScriptTurnsTheFetchIntoACTEAndFeedsTheComplete(t *testing.T) {
	t.Parallel()
	fetch := &captured{
		sql: "with candidates as (\n  select id from s._private_jobs where task_id = any(array(select id from s._private_tasks where identifier = any($2::text[]))) limit 24 for update skip locked\n)\n" +
			"update s._private_jobs as j set locked_by = $1 from candidates c where j.id = c.id\nreturning j.id, j.payload",
		args: []any{"pool-x", []string{"noop"}},
	}
	complete := &captured{sql: "with done as (delete from s._private_jobs as j where j.id = any($1::bigint[]) returning j.job_queue_id)\n" +
		"update s._private_job_queues as q set locked_by = null from done where q.locked_by = $2"}
	script, err := pgbenchScript(fetch, complete, 500)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(script, "\n"), "\n")
	if len(lines) != 3 || lines[1] != `\gset` {
		t.Fatalf("want fetch, \\gset, complete on three lines; got:\n%s", script)
	}
	for _, want := range []string{"any(array['noop']::text[])", "limit 500", "fetched as ( update s._private_jobs", "select coalesce(array_agg(id), '{}')::text as ids from fetched", "('pgbench-' || :client_id::text)"} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("fetch line lacks %q:\n%s", want, lines[0])
		}
	}
	if !strings.Contains(lines[2], "any(:ids::bigint[])") || !strings.HasSuffix(lines[2], ";") {
		t.Errorf("complete line: %s", lines[2])
	}
	if _, err := pgbenchScript(&captured{sql: "select 1", args: fetch.args}, complete, 1); err == nil {
		t.Error("a fetch without WITH was accepted")
	}
}

func TestResultsTableShowsMedianRangeAndRatio(t *testing.T) {
	t.Parallel()
	r := newResults()
	m := metric{name: "drain N=20k", unit: "jobs/s"}
	for _, v := range []float64{1000, 3000, 2000} {
		r.add(m, "gworker-tuned", v)
	}
	r.add(m, "node", 1000)
	r.fail(m, "river", errString("boom"))
	var b strings.Builder
	r.write(&b)
	out := b.String()
	for _, want := range []string{
		"| drain N=20k | gworker-tuned | 2,000 jobs/s | 1,000–3,000 | 3 | 1.00 |",
		"| drain N=20k | node | 1,000 jobs/s | 1,000–1,000 | 1 | 0.50 |",
		"| drain N=20k | river | — | — | 0 (1 failed) | — |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	b.Reset()
	r.writeFailures(&b)
	if !strings.Contains(b.String(), "river: boom") {
		t.Errorf("failures: %q", b.String())
	}
}

type errString string

func (e errString) Error() string { return string(e) }

func TestFlagsQuickAndLists(t *testing.T) {
	t.Parallel()
	c, err := parseFlags([]string{"-quick", "-rounds", "4", "-contenders", "gworker,river"})
	if err != nil {
		t.Fatal(err)
	}
	if c.rounds != 4 || c.drainN[1] != 20000 || c.big || !c.has(cRiver) || c.has(cNode) {
		t.Errorf("quick config: %+v", c)
	}
	for _, bad := range [][]string{{"-n", "0"}, {"-contenders", "sidekiq"}, {"-rounds", "0"}, {"extra"}} {
		if _, err := parseFlags(bad); err == nil {
			t.Errorf("parseFlags(%q) accepted it", bad)
		}
	}
	if got := rotate([]string{"a", "b", "c"}, 4); strings.Join(got, "") != "bca" {
		t.Errorf("rotate = %v", got)
	}
	if short(200000) != "200k" || short(1000000) != "1M" || short(1234) != "1234" {
		t.Error("short")
	}
}

func TestVmHWMReadsTheHighWaterMark(t *testing.T) {
	t.Parallel()
	kib, ok := vmHWM("/proc/self/status")
	if !ok || kib <= 0 {
		t.Fatalf("vmHWM(/proc/self/status) = %v, %v", kib, ok)
	}
	if _, ok := vmHWM("/nonexistent"); ok {
		t.Error("vmHWM of a missing file reported a value")
	}
}
