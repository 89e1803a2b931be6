// Command bench measures gworker against Node graphile-worker and River on
// one PostgreSQL, in one run, in alternating rounds, and prints one table of
// medians, ranges and ratios. See bench/README.md for what it measures and
// how; bench/run.sh is the usual entry point.
//
//	go run ./bench [flags]          (from the repository root)
//
// Nothing here runs under go test except the small unit tests of the
// helpers: every measurement starts from main.
//
// -contenders proto-held adds bench/protoheld to the drain part: a
// prototype of a batch's row locks held in one open transaction, measured
// against core; it is off by default.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// config is the command line.
type config struct {
	rounds         int
	drainN         []int
	defaultMaxN    int
	contenders     []string
	latencySamples int
	insertN        int
	pgbenchClients []int
	pgbenchN       int
	batch          int
	big            bool
	bigN           int
	smallN         int
	fetchRepeats   int
	timeout        time.Duration
	tuned          tuning
	nodeDir        string
	durable        bool
	out            string
	quick          bool
	parts          map[string]bool
	splitSamples   int
	splitGap       time.Duration
	scaleN         []int
	scaleProcs     []int
}

// The parts of a run, in the order they run (-parts).
const (
	pDrain      = "drain"      // drain N, per contender
	pLatency    = "latency"    // idle latency, back-to-back adds
	pInsert     = "insert"     // bulk insert
	pSQL        = "sql"        // the SQL limit (pgbench)
	pSplit      = "split"      // idle latency split: commit → handler, spaced adds
	pScale      = "scale"      // 1, 2, 4 worker processes on one database
	pStatements = "statements" // statements per job
	pBig        = "big"        // fetch time 10k vs 1M, peak RSS draining 1M
)

var allParts = []string{pDrain, pLatency, pInsert, pSQL, pSplit, pScale, pStatements, pBig}

func (c *config) part(name string) bool { return c.parts[name] }

// tuning is gworker's "tuned" configuration.
type tuning struct {
	jobs         int
	localQueue   int
	refetchDelay time.Duration
	batchDelay   time.Duration
}

func (t tuning) args() []string {
	return []string{"-j", strconv.Itoa(t.jobs), "--local-queue", strconv.Itoa(t.localQueue),
		"--refetch-delay", t.refetchDelay.String(), "--batch-delay", t.batchDelay.String()}
}

func (t tuning) String() string { return strings.Join(t.args(), " ") }

// The contenders.
const (
	cGworker = "gworker"       // core's defaults
	cTuned   = "gworker-tuned" // the tuning flags
	cNode    = "node"          // graphile-worker 0.18, perfTest settings, one process
	cNodeDef = "node-default"  // graphile-worker's defaults (latency only)
	cRiver   = "river"         // River v0.51, river bench's settings
	cRiverCp = "river-copy"    // River InsertManyFast (insert only)
	cBulk    = "gworker-bulk"  // Utils.BulkAddJobs, COPY (insert only)
	cPgbench = "sql"           // pgbench with gworker's statements
	cProto   = "proto-held"    // bench/protoheld: a batch's locks held in one open transaction (drain only, off by default)
)

// protoSlots is how many jobs proto-held runs at once (its -j).
const protoSlots = 16

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (*config, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	c := &config{}
	var drainN, contenders, clients, parts, scaleN, scaleProcs string
	fs.IntVar(&c.rounds, "rounds", 3, "alternating rounds of every measurement")
	fs.StringVar(&drainN, "n", "20000,200000", "drain sizes, comma-separated")
	fs.IntVar(&c.defaultMaxN, "default-max-n", 0, "gworker with core's defaults drains only sizes up to this; 0 means every size")
	fs.StringVar(&contenders, "contenders", "gworker,gworker-tuned,node,river", fmt.Sprintf("who runs (node-default adds a latency row; proto-held adds a drain row for bench/protoheld, "+
		"a prototype that holds each batch's row locks in one open transaction and deletes its jobs in it, -batch jobs per batch, %d slots)", protoSlots))
	fs.IntVar(&c.latencySamples, "latency-samples", 300, "sequential add→start samples per latency run")
	fs.IntVar(&c.insertN, "insert-n", 50000, "jobs per bulk insert run")
	fs.StringVar(&clients, "pgbench-clients", "2,4", "pgbench client counts for the SQL limit")
	fs.IntVar(&c.pgbenchN, "pgbench-n", 200000, "jobs each pgbench run drains")
	fs.IntVar(&c.batch, "batch", 500, "jobs per fetch for the SQL limit, the fetch timing and proto-held")
	fs.BoolVar(&c.big, "big", true, "also drain -big-n jobs for gworker's peak RSS, and time fetches with -small-n and -big-n waiting")
	fs.IntVar(&c.bigN, "big-n", 1_000_000, "jobs for the RSS and big-table fetch measurement")
	fs.IntVar(&c.smallN, "small-n", 10_000, "jobs waiting for the small-table fetch timing")
	fs.IntVar(&c.fetchRepeats, "fetch-repeats", 15, "EXPLAIN ANALYZE runs per fetch timing")
	fs.DurationVar(&c.timeout, "timeout", 5*time.Minute, "limit of each single run (a drain, a latency series, ...)")
	fs.IntVar(&c.tuned.jobs, "tuned-jobs", 24, "gworker-tuned: -j")
	fs.IntVar(&c.tuned.localQueue, "tuned-local-queue", 500, "gworker-tuned: --local-queue")
	fs.DurationVar(&c.tuned.refetchDelay, "tuned-refetch-delay", 10*time.Millisecond, "gworker-tuned: --refetch-delay")
	fs.DurationVar(&c.tuned.batchDelay, "tuned-batch-delay", 0, "gworker-tuned: --batch-delay")
	fs.StringVar(&c.nodeDir, "node-dir", os.Getenv("GWORKER_BENCH_NODE_DIR"), "directory with Node 22 and graphile-worker (installed there if missing; default ~/.cache/gworker-bench/node)")
	fs.BoolVar(&c.durable, "durable", true, "local server: fsync, synchronous_commit and full_page_writes on (PostgreSQL's defaults)")
	fs.StringVar(&c.out, "out", "", "also write the report (markdown) to this file")
	fs.BoolVar(&c.quick, "quick", false, "a quick look: 2 rounds, N=2000,20000, 100 latency samples, 10k inserts, 200 split samples, scale-out N=20000, no -big")
	fs.StringVar(&parts, "parts", strings.Join(allParts, ","), "which parts run, comma-separated: "+strings.Join(allParts, ", "))
	fs.IntVar(&c.splitSamples, "split-samples", 1000, "split: spaced add→start samples per run")
	fs.DurationVar(&c.splitGap, "split-gap", 20*time.Millisecond, "split: the worker is left idle between gap and 2×gap (random) after each job starts")
	fs.StringVar(&scaleN, "scale-n", "20000,200000", "scale: jobs each scale-out run drains, comma-separated")
	fs.StringVar(&scaleProcs, "scale-procs", "1,2,4", "scale: worker processes per run, comma-separated")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: go run ./bench [flags]\n\nRuns on $DATABASE_URL if set, else on a throwaway local PostgreSQL.\n\n"+
			"Contenders (-contenders): gworker, gworker-tuned, node, river (the default set); node-default (latency only);\n"+
			"proto-held (drain only, never by default): bench/protoheld, a prototype of the design that holds a batch's\n"+
			"row locks in one open transaction (select ... for update skip locked, no update), runs the batch on %d slots,\n"+
			"deletes its jobs and commits in that transaction, and opens the next batch's transaction while one runs.\n"+
			"It is a measurement for the A/B against core's fetch, not a feature. The sql part measures the SQL limit of\n"+
			"both designs (core's statements, and begin; select ids for update skip locked; delete; commit).\n\nFlags:\n", protoSlots)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if c.quick {
		def := func(name string, apply func()) {
			if !set[name] {
				apply()
			}
		}
		def("rounds", func() { c.rounds = 2 })
		def("n", func() { drainN = "2000,20000" })
		def("latency-samples", func() { c.latencySamples = 100 })
		def("insert-n", func() { c.insertN = 10000 })
		def("pgbench-n", func() { c.pgbenchN = 40000 })
		def("big", func() { c.big = false })
		def("split-samples", func() { c.splitSamples = 200 })
		def("scale-n", func() { scaleN = "20000" })
	}
	var err error
	if c.drainN, err = intList(drainN); err != nil {
		return nil, fmt.Errorf("-n: %w", err)
	}
	if c.pgbenchClients, err = intList(clients); err != nil {
		return nil, fmt.Errorf("-pgbench-clients: %w", err)
	}
	if c.scaleN, err = intList(scaleN); err != nil {
		return nil, fmt.Errorf("-scale-n: %w", err)
	}
	if c.scaleProcs, err = intList(scaleProcs); err != nil {
		return nil, fmt.Errorf("-scale-procs: %w", err)
	}
	c.parts = map[string]bool{}
	for _, p := range strings.Split(parts, ",") {
		switch p = strings.TrimSpace(p); {
		case p == "":
		case slices.Contains(allParts, p):
			c.parts[p] = true
		default:
			return nil, fmt.Errorf("-parts: unknown %q (want %s)", p, strings.Join(allParts, ", "))
		}
	}
	if !c.big {
		delete(c.parts, pBig)
	}
	for _, name := range strings.Split(contenders, ",") {
		switch name = strings.TrimSpace(name); name {
		case cGworker, cTuned, cNode, cNodeDef, cRiver, cProto:
			c.contenders = append(c.contenders, name)
		case "":
		default:
			return nil, fmt.Errorf("-contenders: unknown %q (want gworker, gworker-tuned, node, node-default, river, proto-held)", name)
		}
	}
	switch {
	case c.rounds < 1:
		return nil, errors.New("-rounds must be at least 1")
	case c.latencySamples < 1, c.insertN < 1, c.batch < 1, c.bigN < 1, c.smallN < 1, c.fetchRepeats < 1, c.splitSamples < 1:
		return nil, errors.New("-latency-samples, -insert-n, -batch, -big-n, -small-n, -fetch-repeats and -split-samples must be positive")
	case c.splitGap < 0:
		return nil, errors.New("-split-gap must not be negative")
	case c.timeout <= 0:
		return nil, errors.New("-timeout must be positive")
	}
	return c, nil
}

func intList(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(strings.ReplaceAll(f, "_", ""))
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("want positive integers, got %q", f)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, errors.New("empty list")
	}
	return out, nil
}

func (c *config) has(name string) bool {
	for _, x := range c.contenders {
		if x == name {
			return true
		}
	}
	return false
}
