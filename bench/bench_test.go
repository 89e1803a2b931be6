package main

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
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
	complete := &captured{sql: "with done as (delete from s._private_jobs as j using unnest($1::bigint[], $3::bigint[]) as c(id, revision) where j.id = c.id returning j.job_queue_id)\n" +
		"update s._private_job_queues as q set locked_by = null from done where q.locked_by = $2"}
	script, err := pgbenchScript(fetch, complete, 500)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(script, "\n"), "\n")
	if len(lines) != 3 || lines[1] != `\gset` {
		t.Fatalf("want fetch, \\gset, complete on three lines; got:\n%s", script)
	}
	for _, want := range []string{"any(array['noop']::text[])", "limit 500", "fetched as ( update s._private_jobs", "select coalesce(array_agg(id), '{}')::text as ids, coalesce(array_agg(revision), '{}')::text as revs from fetched", "('pgbench-' || :client_id::text)"} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("fetch line lacks %q:\n%s", want, lines[0])
		}
	}
	if !strings.Contains(lines[2], "unnest(:ids::bigint[], :revs::bigint[])") || !strings.HasSuffix(lines[2], ";") {
		t.Errorf("complete line: %s", lines[2])
	}
	if _, err := pgbenchScript(&captured{sql: "select 1", args: fetch.args}, complete, 1); err == nil {
		t.Error("a fetch without WITH was accepted")
	}
}

func TestHeldPgbenchScriptLocksWithoutUpdateAndDeletesInOneTransaction(t *testing.T) {
	t.Parallel()
	fetch := &captured{sql: "with candidates as (...) update ...", args: []any{"pool-x", []string{"noop", "it's"}}}
	script, err := heldPgbenchScript(`gw"b`, fetch, 250)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(script, "\n"), "\n")
	if len(lines) != 5 || lines[0] != "begin;" || lines[2] != `\gset` || lines[4] != "commit;" {
		t.Fatalf("want begin, select, \\gset, delete, commit on five lines; got:\n%s", script)
	}
	sel := lines[1]
	for _, want := range []string{
		`select coalesce(array_agg(id), '{}')::text as ids from (select j.id from "gw""b"._private_jobs as j where`,
		"j.is_available = true", "j.job_queue_id is null", "j.run_at <= now()",
		`from "gw""b"._private_tasks as t where t.identifier = any(array['noop','it''s']::text[])`,
		"order by j.priority asc, j.run_at asc limit 250 for update skip locked) as held",
	} {
		if !strings.Contains(sel, want) {
			t.Errorf("select lacks %q:\n%s", want, sel)
		}
	}
	if strings.HasSuffix(sel, ";") || strings.Contains(sel, " set ") {
		t.Errorf("select: %s", sel)
	}
	if lines[3] != `delete from "gw""b"._private_jobs where id = any(:ids::bigint[]);` {
		t.Errorf("delete: %s", lines[3])
	}
	if _, err := heldPgbenchScript("s", &captured{args: []any{"pool-x"}}, 1); err == nil {
		t.Error("a fetch without task identifiers was accepted")
	}
	if m := sqlLimitMetric(2, true); m.name != "SQL limit (locks held in one transaction), 2 clients" || sqlLimitMetric(4, false).name != "SQL limit, 4 clients" {
		t.Errorf("metric names: %q, %q", m.name, sqlLimitMetric(4, false).name)
	}
}

func TestCheckProtoWantsEveryJobOnceAndNoRowLeft(t *testing.T) {
	t.Parallel()
	out := "jobs=200 seconds=0.500 jobs_per_sec=400\ndistinct=200 duplicates=0 remaining=0\n"
	if err := checkProto(out, 200); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{
		"jobs=200 seconds=0.500 jobs_per_sec=400\n",
		"distinct=200 duplicates=1 remaining=0\n",
		"distinct=200 duplicates=0 remaining=3\n",
		"distinct=199 duplicates=0 remaining=0\n",
	} {
		if err := checkProto(bad, 200); err == nil {
			t.Errorf("checkProto(%q) accepted it", bad)
		}
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
	if c, err := parseFlags(nil); err != nil || c.has(cProto) {
		t.Errorf("proto-held runs by default: %v", err)
	}
	if c, err := parseFlags([]string{"-contenders", "gworker,proto-held"}); err != nil || !c.has(cProto) {
		t.Errorf("-contenders gworker,proto-held: %v", err)
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

func TestFlagsPartsAndScale(t *testing.T) {
	t.Parallel()
	c, err := parseFlags(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range allParts {
		if !c.part(p) {
			t.Errorf("part %s is off by default", p)
		}
	}
	if c.splitSamples != 1000 || c.splitGap != 20*time.Millisecond || !slices.Equal(c.scaleProcs, []int{1, 2, 4}) || !slices.Equal(c.scaleN, []int{20000, 200000}) {
		t.Errorf("defaults: samples %d, gap %v, procs %v, n %v", c.splitSamples, c.splitGap, c.scaleProcs, c.scaleN)
	}
	c, err = parseFlags([]string{"-parts", "split, scale", "-scale-procs", "1,8", "-big=true"})
	if err != nil {
		t.Fatal(err)
	}
	if !c.part(pSplit) || !c.part(pScale) || c.part(pDrain) || c.part(pBig) || c.peers() || !slices.Equal(c.scaleProcs, []int{1, 8}) {
		t.Errorf("-parts split,scale: %v, peers %v, procs %v", c.parts, c.peers(), c.scaleProcs)
	}
	if c, _ := parseFlags([]string{"-big=false"}); c.part(pBig) {
		t.Error("-big=false left the big part on")
	}
	if c, _ := parseFlags([]string{"-quick"}); c.splitSamples != 200 || !slices.Equal(c.scaleN, []int{20000}) {
		t.Errorf("-quick: split samples %d, scale-n %v", c.splitSamples, c.scaleN)
	}
	for _, bad := range [][]string{{"-parts", "drain,everything"}, {"-scale-procs", "0"}, {"-split-gap", "-1ms"}, {"-split-samples", "0"}} {
		if _, err := parseFlags(bad); err == nil {
			t.Errorf("parseFlags(%q) accepted it", bad)
		}
	}
}

func TestLatencySampleSplitsAtTheCommit(t *testing.T) {
	t.Parallel()
	s := []latencySample{{add: 1500 * time.Microsecond, worker: 250 * time.Microsecond}, {add: time.Millisecond, worker: -40 * time.Microsecond}}
	if got := millis(s, latencySample.total); got[0] != 1.75 || got[1] != 0.96 {
		t.Errorf("totals = %v", got)
	}
	if got := millis(s, func(s latencySample) time.Duration { return s.worker }); got[0] != 0.25 || got[1] != -0.04 {
		t.Errorf("worker shares = %v", got)
	}
}

func TestParseSpanAndCountRuns(t *testing.T) {
	t.Parallel()
	start, end, err := parseSpan("ready?\njobs=3 seconds=0.100 jobs_per_sec=30\nspan_unix_ns=100,250\n")
	if err != nil || start != 100 || end != 250 {
		t.Fatalf("parseSpan = %d, %d, %v", start, end, err)
	}
	for _, bad := range []string{"jobs=3 seconds=1 jobs_per_sec=3\n", "span_unix_ns=5,4\n"} {
		if _, _, err := parseSpan(bad); err == nil {
			t.Errorf("parseSpan(%q) accepted it", bad)
		}
	}
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	if err := os.WriteFile(a, []byte("10\n11\n12\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(b, []byte("13\n11\n11\n99\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := countRuns([]string{a, b}, 10, 13)
	if err != nil {
		t.Fatal(err)
	}
	if want := (runCount{runs: 7, distinct: 5, duplicates: 2, repeated: 1, foreign: 1}); c != want {
		t.Errorf("countRuns = %+v, want %+v", c, want)
	}
	if err := os.WriteFile(b, []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := countRuns([]string{b}, 0, 1); err == nil {
		t.Error("countRuns accepted a line that is not an id")
	}
}

func TestProcParsers(t *testing.T) {
	t.Parallel()
	m, err := parseProcStat("cpu  100 5 50 800 20 3 2 0 7 0\ncpu0 1 2 3\n")
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(m.busy-1.6) > 1e-9 || math.Abs(m.total-9.8) > 1e-9 {
		t.Errorf("parseProcStat = %+v, want busy 1.6 s, total 9.8 s", m)
	}
	if _, err := parseProcStat("intr 1 2\n"); err == nil {
		t.Error("parseProcStat accepted a file without the cpu line")
	}
	// comm may hold spaces and parentheses.
	st, err := parseProcPidStat("42 (postgres: a (b)) Z 7 42 42 0 -1 4194560 100 0 0 0 11 22 33 44 20 0 1 0 5 0 0")
	if err != nil {
		t.Fatal(err)
	}
	if st.state != 'Z' || st.ppid != 7 || st.utime != 11 || st.stime != 22 || st.cutime != 33 || st.cstime != 44 {
		t.Errorf("parseProcPidStat = %+v", st)
	}
	if _, err := parseProcPidStat("42 (x) S 7"); err == nil {
		t.Error("parseProcPidStat accepted a short line")
	}
	if cpu, err := processTreeCPU(os.Getpid()); err != nil || cpu < 0 {
		t.Errorf("processTreeCPU(self) = %v, %v", cpu, err)
	}
}

func TestWaitStateNamesWhatABackendDoes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ state, typ, event, query, want string }{
		{"active", "", "", "with candidates", "running (on CPU)"},
		{"active", "IO", "WALSync", "with done as", "IO:WALSync"},
		{"idle", "Client", "ClientRead", "with done as", "idle (waiting for the worker)"},
		{"idle", "Client", "ClientRead", ` LISTEN "gwbench`, "idle listener"},
		{"idle in transaction", "Client", "ClientRead", "", "idle in transaction"},
		{"", "", "", "", "starting or ending"},
	} {
		if got := waitState(tc.state, tc.typ, tc.event, tc.query); got != tc.want {
			t.Errorf("waitState(%q, %q, %q, %q) = %q, want %q", tc.state, tc.typ, tc.event, tc.query, got, tc.want)
		}
	}
}

func TestCountersDiffAndScaleReport(t *testing.T) {
	t.Parallel()
	at := time.Unix(100, 0)
	before := &counters{at: at, serverCPU: 1, machine: cpuTimes{busy: 10, total: 20},
		database: map[string]float64{"xact_commit": 100, "blks_hit": 1000},
		wal:      map[string]float64{"wal_bytes": 1000, "wal_records": 10, "wal_sync": 5, "wal_sync_time": 10},
		statements: map[string]statementCounts{
			"1/10/true": {query: "with candidates as (select 1)", values: map[string]float64{"calls": 2, "total_exec_time": 4, "rows": 10}},
			"2/10/true": {query: "select unchanged", values: map[string]float64{"calls": 3, "total_exec_time": 3}},
		}}
	after := &counters{at: at.Add(2 * time.Second), serverCPU: 2.5, machine: cpuTimes{busy: 13.5, total: 24},
		database: map[string]float64{"xact_commit": 110, "blks_hit": 3000, "tup_deleted": 1000},
		wal:      map[string]float64{"wal_bytes": 501000, "wal_records": 2010, "wal_sync": 25, "wal_sync_time": 50},
		statements: map[string]statementCounts{
			"1/10/true": {query: "with candidates as (select 1)", values: map[string]float64{"calls": 6, "total_exec_time": 40, "rows": 1010, "shared_blks_hit": 400}},
			"2/10/true": {query: "select unchanged", values: map[string]float64{"calls": 3, "total_exec_time": 3}},
			"3/10/true": {query: "with done as (delete | x)", values: map[string]float64{"calls": 4, "total_exec_time": 8}},
		}}
	d := diffCounters(before, after)
	if d.seconds != 2 || d.serverCPU != 1.5 || d.machine.busy != 3.5 || d.database["xact_commit"] != 10 || d.wal["wal_bytes"] != 500000 {
		t.Errorf("diff: %+v", d)
	}
	if len(d.statements) != 2 || d.statements[0].values["calls"] != 4 || d.statements[1].query != "with done as (delete | x)" {
		t.Fatalf("statements: %+v", d.statements)
	}
	r := scaleRun{who: cTuned, procs: 2, n: 1000, wall: 2, inside: 1.9, perProc: []int{600, 400},
		count: runCount{runs: 1000, distinct: 1000}, workerCPU: 0.5, counters: &d, samples: 10,
		waits: map[string]int{"running (on CPU)": 12, "IO:WALSync": 8, "Lock:tuple": 0, "LWLock:WALInsert": 0}, observerStmt: 4}
	text := strings.Join(describeScaleRun(r), "\n")
	for _, want := range []string{
		"- 500 jobs/s: 2.000 s from the start signal to the last exit (1.900 s inside the processes); jobs per process 600 / 400; 1000 runs, 1000 distinct jobs, 0 duplicates",
		"machine 1.75 of 2; PostgreSQL 0.75; worker processes 0.25 (CPU per job: PostgreSQL 1500.0 µs, workers 500.0 µs)",
		"6.0 commits", "(the observer's 4 statements subtracted from the commits)",
		"500 bytes, 2.00 records", "20 syncs (10/s, 20.0 per 1000 jobs), 2.00 ms each, 2% of the run syncing",
		"running (on CPU) 1.20, IO:WALSync 0.80 (of 2.00 connections)",
		"44.0 ms executing statements in all (44.0 µs per job",
		"| `with candidates as (select 1)` | 4.00 | 9.000 | 36.00 | 82% | 250.0 | 100.0 |",
		"| `with done as (delete \\| x)` |",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("report lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "Lock:tuple") || strings.Contains(text, "others") {
		t.Errorf("states never seen are listed:\n%s", text)
	}
	var b strings.Builder
	(&bench{scale: scaleResults{runs: []scaleRun{r, r}}}).writeScale(&b)
	if out := b.String(); !strings.Contains(out, "in all 2 runs every job ran exactly once") || strings.Count(out, "#### gworker-tuned, N=1k, 2 processes (round 1)") != 1 {
		t.Errorf("writeScale:\n%s", out)
	}
}

func TestSQLLimitTargetIgnoresTheHeldLockRow(t *testing.T) {
	t.Parallel()
	b := &bench{cfg: &config{drainN: []int{200000}}, res: newResults()}
	b.res.add(sqlLimitMetric(2, false), cPgbench, 100)
	b.res.add(sqlLimitMetric(2, true), cPgbench, 300)
	b.res.add(metric{name: "drain N=200k", unit: "jobs/s"}, cGworker, 90)
	b.res.add(metric{name: "drain N=200k", unit: "jobs/s"}, cProto, 250)
	got := strings.Join(b.targets(), "\n")
	if !strings.Contains(got, "drain N=200k: gworker / best SQL limit = 90% (target ≥ 85%): met") {
		t.Errorf("targets:\n%s", got)
	}
}
