package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// scaleAppName is the application_name of the scale-out workers'
// connections (PGAPPNAME), by which the wait-event sampler finds their
// backends.
const scaleAppName = "gwbench-scale"

// sampleInterval is how often the sampler reads pg_stat_activity during a
// scale-out run.
const sampleInterval = 20 * time.Millisecond

// scaleRun is one scale-out run: procs worker processes draining n jobs.
type scaleRun struct {
	who          string
	procs, n     int
	round        int
	wall         float64 // seconds from the start signal to the last exit
	inside       float64 // seconds from the first process's start to the last one's end
	perProc      []int   // jobs each process ran
	count        runCount
	workerCPU    float64 // CPU seconds of the worker processes
	counters     *counterDelta
	samples      int
	waits        map[string]int
	observerStmt int // statements the observer ran in the benchmark's database between the readings
}

func (r scaleRun) rate() float64 { return float64(r.n) / r.wall }

// scaleResults keeps every scale-out run for the report.
type scaleResults struct {
	runs []scaleRun
}

func metricScale(n, procs int) metric {
	s := "es"
	if procs == 1 {
		s = ""
	}
	return metric{name: fmt.Sprintf("scale-out N=%s, %d process%s", short(n), procs, s), unit: "jobs/s"}
}

type scaleCombo struct {
	who   string
	procs int
}

// scaleRound runs every scale-out configuration once, in an order that
// rotates from round to round, with statement tracking on.
func (b *bench) scaleRound(ctx context.Context, r int) {
	c := b.cfg
	var combos []scaleCombo
	for _, who := range filter(c.contenders, cGworker, cTuned) {
		for _, p := range c.scaleProcs {
			combos = append(combos, scaleCombo{who, p})
		}
	}
	if len(combos) == 0 {
		return
	}
	if err := b.trackStatements(ctx, true); err != nil {
		b.logf("statement tracking: %v", err)
	}
	defer func() {
		if err := b.trackStatements(context.WithoutCancel(ctx), false); err != nil {
			b.logf("statement tracking: %v", err)
		}
	}()
	for _, n := range c.scaleN {
		for _, cb := range rotate(combos, r) {
			if cb.who == cGworker && c.defaultMaxN > 0 && n > c.defaultMaxN {
				if r == 0 {
					b.res.fail(metricScale(n, cb.procs), cb.who, fmt.Errorf("skipped: N > -default-max-n %d", c.defaultMaxN))
				}
				continue
			}
			b.step(ctx, fmt.Sprintf("%s %s", metricScale(n, cb.procs).name, cb.who), func(ctx context.Context) (string, error) {
				return b.scaleOut(ctx, cb.who, cb.procs, n, r)
			})
		}
	}
}

// drainerArgs are bench/drainer's tuning flags: none for gworker, so that
// it runs on core's defaults, whatever they are.
func (b *bench) drainerArgs(who string) []string {
	if who == cTuned {
		return b.cfg.tuned.args()
	}
	return nil
}

// drainerProc is one running bench/drainer.
type drainerProc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	ids    string
	stderr bytes.Buffer
	ready  chan struct{} // closed at the "ready" line
	done   chan struct{} // closed when its standard output ends
	mu     sync.Mutex
	lines  []string // standard output after "ready"
}

func (p *drainerProc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n") + "\n"
}

func (b *bench) startDrainer(ctx context.Context, who string, i int) (*drainerProc, error) {
	p := &drainerProc{ids: filepath.Join(b.work, fmt.Sprintf("ids-%d", i)), ready: make(chan struct{}), done: make(chan struct{})}
	_ = os.Remove(p.ids)
	args := append([]string{"-c", b.url, "-s", schemaGworker, "-ids", p.ids, "-timeout", b.cfg.timeout.String()}, b.drainerArgs(who)...)
	p.cmd = b.command(ctx, b.root, b.drainerBin, args...)
	p.cmd.Env = append(os.Environ(), "PGAPPNAME="+scaleAppName)
	p.cmd.Stderr = &p.stderr
	var err error
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		defer close(p.done)
		s := bufio.NewScanner(stdout)
		ready := false
		for s.Scan() {
			if !ready && s.Text() == "ready" {
				ready = true
				close(p.ready)
				continue
			}
			p.mu.Lock()
			p.lines = append(p.lines, s.Text())
			p.mu.Unlock()
		}
	}()
	return p, nil
}

// wait waits for the process to end, after its standard output.
func (p *drainerProc) wait() error {
	<-p.done
	if err := p.cmd.Wait(); err != nil {
		return fmt.Errorf("drainer: %w: %s", err, tailString(p.stderr.String(), 600))
	}
	return nil
}

// scaleOut fills n jobs, starts procs drainer processes, waits until each
// is connected and ready, reads the server's counters, tells them all to
// start, and times from that moment to the last exit; meanwhile it samples
// what their backends wait for. Then it counts from the processes' id files
// how many times each job ran.
func (b *bench) scaleOut(ctx context.Context, who string, procs, n, round int) (string, error) {
	m := metricScale(n, procs)
	fail := func(err error) (string, error) {
		b.res.fail(m, who, err)
		return "", err
	}
	if err := b.fill(ctx, cGworker, n); err != nil {
		return fail(err)
	}
	var lo, hi int64
	if err := b.db.pool.QueryRow(ctx, "select coalesce(min(id), 0), coalesce(max(id), 0) from "+jobsTable(schemaGworker)).Scan(&lo, &hi); err != nil {
		return fail(err)
	}
	ps := make([]*drainerProc, 0, procs)
	defer func() {
		// Only on a failure are any still running.
		for _, p := range ps {
			if p.cmd.ProcessState == nil {
				_ = p.cmd.Process.Kill()
				_ = p.wait()
			}
		}
	}()
	for i := 0; i < procs; i++ {
		p, err := b.startDrainer(ctx, who, i)
		if err != nil {
			return fail(err)
		}
		ps = append(ps, p)
	}
	for _, p := range ps {
		select {
		case <-p.ready:
		case <-p.done:
			return fail(fmt.Errorf("a drainer ended before it was ready: %v", p.wait()))
		case <-ctx.Done():
			return fail(ctx.Err())
		}
	}
	conn, err := b.pg.observer.Acquire(ctx)
	if err != nil {
		return fail(err)
	}
	defer conn.Release()
	before, err := b.readCounters(ctx, conn)
	if err != nil {
		return fail(err)
	}
	sampler := startWaitSampler(ctx, conn, scaleAppName, sampleInterval)
	begin := time.Now()
	for _, p := range ps {
		_, err := io.WriteString(p.stdin, "go\n")
		if err = errors.Join(err, p.stdin.Close()); err != nil {
			sampler.finish()
			return fail(fmt.Errorf("start a drainer: %w", err))
		}
	}
	var waitErr error
	for _, p := range ps {
		waitErr = errors.Join(waitErr, p.wait())
	}
	wall := time.Since(begin).Seconds()
	samples, waits, sampled := sampler.finish()
	if waitErr != nil {
		return fail(waitErr)
	}
	// Backends write their last counters when they end: wait until the
	// workers' are gone. A backend flushes its statistics before it
	// leaves pg_stat_activity (PostgreSQL 15 on: before_shmem_exit
	// callbacks run before on_shmem_exit's), and its CPU time reaches the
	// postmaster's cutime once reaped. Counters read before would miss
	// theirs, so a run whose backends outlive the wait fails rather than
	// report them.
	polls := 0
	for deadline := time.Now().Add(10 * time.Second); ; {
		var k int64
		polls++
		if err := conn.QueryRow(ctx, "select count(*) from pg_stat_activity where application_name = $1", scaleAppName).Scan(&k); err != nil {
			return fail(err)
		}
		if k == 0 && b.pg.postmaster > 0 {
			z, err := unreapedChildren(b.pg.postmaster)
			if err != nil {
				return fail(err)
			}
			k = int64(z)
		}
		if k == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fail(fmt.Errorf("%d backends of the workers still in pg_stat_activity or not reaped by the postmaster 10 s after their processes ended: their counters are not all written", k))
		}
		time.Sleep(10 * time.Millisecond)
	}
	after, err := b.readCounters(ctx, conn)
	if err != nil {
		return fail(err)
	}
	d := diffCounters(before, after)

	run := scaleRun{who: who, procs: procs, n: n, round: round, wall: wall, counters: &d, samples: samples, waits: waits}
	if !b.pg.separate {
		// readCounters' two statements after its first, the samples and
		// the polls ran in the benchmark's database.
		run.observerStmt = 2 + sampled + polls
	}
	var first, last int64
	var files []string
	reported := 0
	for _, p := range ps {
		out := p.output()
		jobs, _, err := parseResult(out)
		if err != nil {
			return fail(err)
		}
		start, end, err := parseSpan(out)
		if err != nil {
			return fail(err)
		}
		if first == 0 || start < first {
			first = start
		}
		last = max(last, end)
		run.perProc = append(run.perProc, jobs)
		reported += jobs
		run.workerCPU += (p.cmd.ProcessState.UserTime() + p.cmd.ProcessState.SystemTime()).Seconds()
		files = append(files, p.ids)
	}
	run.inside = float64(last-first) / 1e9
	if run.count, err = countRuns(files, lo, hi); err != nil {
		return fail(err)
	}
	left, err := b.db.remaining(ctx, schemaGworker)
	if err != nil {
		return fail(err)
	}
	b.scale.runs = append(b.scale.runs, run)
	var problems []string
	if run.count.runs != reported {
		problems = append(problems, fmt.Sprintf("the processes reported %d runs, their id files hold %d", reported, run.count.runs))
	}
	if left != 0 {
		problems = append(problems, fmt.Sprintf("%d jobs left in the table", left))
	}
	if run.count.duplicates > 0 {
		problems = append(problems, fmt.Sprintf("DUPLICATES: %d extra runs of %d jobs", run.count.duplicates, run.count.repeated))
	}
	if missing := n - run.count.distinct; missing != 0 {
		problems = append(problems, fmt.Sprintf("%d jobs never ran", missing))
	}
	if run.count.foreign > 0 {
		problems = append(problems, fmt.Sprintf("%d runs of ids outside the filled range %d–%d", run.count.foreign, lo, hi))
	}
	if len(problems) > 0 {
		return fail(errors.New(strings.Join(problems, "; ")))
	}
	b.res.add(m, who, run.rate())
	return fmt.Sprintf("%s jobs/s (%.3f s from outside, %.3f s inside), jobs per process %s, duplicates 0",
		groupThousands(int64(run.rate())), wall, run.inside, joinCounts(run.perProc)), nil
}

var spanLine = regexp.MustCompile(`(?m)^span_unix_ns=(\d+),(\d+)$`)

// parseSpan reads a drainer's span_unix_ns=START,END line.
func parseSpan(out string) (start, end int64, err error) {
	m := spanLine.FindStringSubmatch(out)
	if m == nil {
		return 0, 0, fmt.Errorf("no line span_unix_ns=START,END in the output %q", tailString(out, 300))
	}
	start, _ = strconv.ParseInt(m[1], 10, 64)
	end, _ = strconv.ParseInt(m[2], 10, 64)
	if end < start {
		return 0, 0, fmt.Errorf("span ends before it starts: %s", m[0])
	}
	return start, end, nil
}

// runCount is how often the jobs of one run ran, over every process.
type runCount struct {
	runs       int // handler runs
	distinct   int // jobs that ran at least once
	duplicates int // runs beyond the first of a job: runs - distinct
	repeated   int // jobs that ran more than once
	foreign    int // runs of ids outside the jobs filled for the run
}

// countRuns reads the id files (one id per line) and counts runs per job;
// ids outside lo..hi are not the run's jobs.
func countRuns(files []string, lo, hi int64) (runCount, error) {
	seen := map[int64]int{}
	var c runCount
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return c, err
		}
		s := bufio.NewScanner(fh)
		for s.Scan() {
			id, err := strconv.ParseInt(s.Text(), 10, 64)
			if err != nil {
				fh.Close()
				return c, fmt.Errorf("%s: %w", f, err)
			}
			c.runs++
			if id < lo || id > hi {
				c.foreign++
			}
			seen[id]++
		}
		err = s.Err()
		fh.Close()
		if err != nil {
			return c, err
		}
	}
	c.distinct = len(seen)
	c.duplicates = c.runs - c.distinct
	for _, k := range seen {
		if k > 1 {
			c.repeated++
		}
	}
	return c, nil
}

func joinCounts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = groupThousands(int64(x))
	}
	return strings.Join(s, " / ")
}

// writeScale writes the scale-out section of the report: duplicates over
// every run, then for each configuration its latest run with the server's
// counters.
func (b *bench) writeScale(w io.Writer) {
	runs := b.scale.runs
	if len(runs) == 0 {
		return
	}
	fmt.Fprintln(w, "\n### Scale-out: worker processes on one database")
	dups, repeated := 0, 0
	for _, r := range runs {
		dups += r.count.duplicates
		repeated += r.count.repeated
	}
	if dups == 0 {
		fmt.Fprintf(w, "\nDuplicates: none; in all %d runs every job ran exactly once (counted by job id over every process).\n", len(runs))
	} else {
		fmt.Fprintf(w, "\nDuplicates: %d extra runs of %d jobs over %d runs (see the failed runs).\n", dups, repeated, len(runs))
	}
	latest := map[[3]int]int{} // (contender, procs, n) -> index of the latest run
	var order [][3]int
	whoIndex := map[string]int{cGworker: 0, cTuned: 1}
	for i, r := range runs {
		k := [3]int{whoIndex[r.who], r.procs, r.n}
		if _, ok := latest[k]; !ok {
			order = append(order, k)
		}
		latest[k] = i
	}
	slices.SortFunc(order, func(a, b [3]int) int {
		for i := range a {
			if a[i] != b[i] {
				return a[i] - b[i]
			}
		}
		return 0
	})
	for _, k := range order {
		r := runs[latest[k]]
		fmt.Fprintf(w, "\n#### %s, %s (round %d)\n\n", r.who, strings.TrimPrefix(metricScale(r.n, r.procs).name, "scale-out "), r.round+1)
		for _, l := range describeScaleRun(r) {
			fmt.Fprintf(w, "%s\n", l)
		}
	}
}

// describeScaleRun turns one run and its counters into report lines.
func describeScaleRun(r scaleRun) []string {
	n := float64(r.n)
	out := []string{fmt.Sprintf("- %s jobs/s: %.3f s from the start signal to the last exit (%.3f s inside the processes); jobs per process %s; %d runs, %d distinct jobs, %d duplicates",
		groupThousands(int64(r.rate())), r.wall, r.inside, joinCounts(r.perProc), r.count.runs, r.count.distinct, r.count.duplicates)}
	d := r.counters
	if d == nil {
		return out
	}
	cpus := d.machine.total / r.wall
	cpu := fmt.Sprintf("- CPU, in CPUs busy on average over the run: machine %.2f of %.0f", d.machine.busy/r.wall, cpus)
	if d.serverCPU >= 0 {
		cpu += fmt.Sprintf("; PostgreSQL %.2f", d.serverCPU/r.wall)
	}
	cpu += fmt.Sprintf("; worker processes %.2f", r.workerCPU/r.wall)
	if d.serverCPU >= 0 {
		cpu += fmt.Sprintf(" (CPU per job: PostgreSQL %.1f µs, workers %.1f µs)", 1e6*d.serverCPU/n, 1e6*r.workerCPU/n)
	}
	out = append(out, cpu)
	db := d.database
	if len(db) > 0 {
		commits := db["xact_commit"] - float64(r.observerStmt)
		line := fmt.Sprintf("- pg_stat_database, per 1000 jobs: %.1f commits, %.1f rollbacks, %.0f buffer hits, %.1f reads, %.0f rows deleted, %.0f updated, %.0f inserted",
			1000*commits/n, 1000*db["xact_rollback"]/n, 1000*db["blks_hit"]/n, 1000*db["blks_read"]/n,
			1000*db["tup_deleted"]/n, 1000*db["tup_updated"]/n, 1000*db["tup_inserted"]/n)
		if r.observerStmt > 0 {
			line += fmt.Sprintf(" (the observer's %d statements subtracted from the commits)", r.observerStmt)
		}
		out = append(out, line)
	}
	if wal := d.wal; len(wal) > 0 {
		line := fmt.Sprintf("- pg_stat_wal: %.0f bytes, %.2f records and %.3f full-page images per job; %s/s",
			wal["wal_bytes"]/n, wal["wal_records"]/n, wal["wal_fpi"]/n, bytesSize(wal["wal_bytes"]/r.wall))
		if _, ok := wal["wal_sync"]; ok {
			line += fmt.Sprintf("; %.0f syncs (%.0f/s, %.1f per 1000 jobs)", wal["wal_sync"], wal["wal_sync"]/r.wall, 1000*wal["wal_sync"]/n)
			if wal["wal_sync_time"] > 0 && wal["wal_sync"] > 0 {
				line += fmt.Sprintf(", %.2f ms each, %.0f%% of the run syncing", wal["wal_sync_time"]/wal["wal_sync"], 100*wal["wal_sync_time"]/1000/r.wall)
			}
		}
		if v, ok := wal["wal_write"]; ok {
			line += fmt.Sprintf("; %.0f writes", v)
		}
		if v := wal["wal_buffers_full"]; v > 0 {
			line += fmt.Sprintf("; WAL buffers full %.0f times", v)
		}
		out = append(out, line)
	}
	if r.samples > 0 {
		type kv struct {
			k string
			v int
		}
		var states []kv
		total := 0
		for k, v := range r.waits {
			states = append(states, kv{k, v})
			total += v
		}
		slices.SortFunc(states, func(a, b kv) int {
			if a.v != b.v {
				return b.v - a.v
			}
			return strings.Compare(a.k, b.k)
		})
		var parts []string
		rest := 0
		for _, s := range states {
			if float64(s.v)/float64(r.samples) < 0.01 {
				rest += s.v
				continue
			}
			parts = append(parts, fmt.Sprintf("%s %.2f", s.k, float64(s.v)/float64(r.samples)))
		}
		if rest > 0 {
			parts = append(parts, fmt.Sprintf("others %.2f", float64(rest)/float64(r.samples)))
		}
		out = append(out, fmt.Sprintf("- the workers' backends, sampled every %v (%d samples), on average: %s (of %.2f connections)",
			sampleInterval, r.samples, strings.Join(parts, ", "), float64(total)/float64(r.samples)))
	}
	if len(d.statements) > 0 {
		var all float64
		for _, s := range d.statements {
			all += execTime(s.values)
		}
		out = append(out, fmt.Sprintf("- pg_stat_statements: %.1f ms executing statements in all (%.1f µs per job, %.2f backends busy on average); the top ones:",
			all, 1000*all/n, all/1000/r.wall), "",
			"| statement | calls per 1000 jobs | mean ms | µs per job | share | rows per call | buffer hits per call | dirtied per call | WAL bytes per call |",
			"|---|---:|---:|---:|---:|---:|---:|---:|---:|")
		for i, s := range d.statements {
			if i == 6 {
				break
			}
			v := s.values
			calls := v["calls"]
			t := execTime(v)
			out = append(out, fmt.Sprintf("| %s | %.2f | %.3f | %.2f | %.0f%% | %.1f | %.1f | %.2f | %.0f |",
				statementLabel(s.query), 1000*calls/n, t/calls, 1000*t/n, 100*t/all, v["rows"]/calls,
				v["shared_blks_hit"]/calls, v["shared_blks_dirtied"]/calls, v["wal_bytes"]/calls))
		}
	}
	return out
}

// statementLabel names a statement for the table by its first 70
// characters, on one line.
func statementLabel(sql string) string {
	s := strings.Join(strings.Fields(sql), " ")
	if r := []rune(s); len(r) > 70 {
		s = string(r[:70]) + "…"
	}
	return "`" + strings.ReplaceAll(s, "|", "\\|") + "`"
}

func bytesSize(v float64) string {
	switch {
	case v >= 1<<20:
		return fmt.Sprintf("%.1f MiB", v/(1<<20))
	case v >= 1<<10:
		return fmt.Sprintf("%.1f KiB", v/(1<<10))
	}
	return fmt.Sprintf("%.0f B", v)
}
