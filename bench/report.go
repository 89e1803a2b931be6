package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// report writes the whole result: the machine, the settings, the table,
// the targets of issue 5 and the evidence (statements per job, plans).
func (b *bench) report(ctx context.Context, w io.Writer) {
	c := b.cfg
	fmt.Fprintf(w, "\n## gworker benchmark, %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintln(w, "Machine and versions:")
	for _, l := range b.machine(ctx) {
		fmt.Fprintf(w, "- %s\n", l)
	}
	fmt.Fprintf(w, "\nSettings: %d rounds (contender order rotated each round); drain N=%s; %d latency samples per run; bulk insert N=%d; "+
		"SQL limit (core's statements; and locks held in one transaction) with %v clients, %d jobs per fetch; gworker = core's defaults (no tuning flag; %d CPUs here); "+
		"gworker-tuned = `%s`; node = graphile-worker perfTest settings (concurrency 24, localQueue 500, refetchDelay 10ms, batch delays 0, one process); "+
		"river = river bench settings (MaxWorkers 2000, FetchCooldown 2ms, FetchPollInterval 20ms); "+
		"node-default = graphile-worker defaults (latency only)%s.\n\n",
		c.rounds, joinInts(c.drainN), c.latencySamples, c.insertN, c.pgbenchClients, c.batch, runtime.NumCPU(), c.tuned, protoSettings(c))
	if c.part(pSplit) || c.part(pScale) {
		fmt.Fprintf(w, "Latency split: %d adds per run, each after the worker was idle %v to %v, worker in this process; "+
			"scale-out: %s worker processes (bench/drainer) draining N=%s, gworker with no tuning flag (core's defaults), gworker-tuned with `%s`.\n\n",
			c.splitSamples, c.splitGap, 2*c.splitGap, joinInts(c.scaleProcs), joinInts(c.scaleN), c.tuned)
	}
	b.res.write(w)
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Targets (issues 5 and 17), from the medians above:")
	for _, l := range b.targets() {
		fmt.Fprintf(w, "- %s\n", l)
	}
	if len(b.stmtNotes) > 0 {
		fmt.Fprintln(w, "\nStatements sent by the worker:")
		for _, n := range b.stmtNotes {
			fmt.Fprintf(w, "- %s\n", n)
		}
	}
	b.writeScale(w)
	var failures strings.Builder
	b.res.writeFailures(&failures)
	if failures.Len() > 0 {
		fmt.Fprintf(w, "\nFailed runs (not in the medians):\n%s", failures.String())
	}
	for _, p := range b.plans {
		fmt.Fprintf(w, "\n```\n%s\n```\n", p)
	}
}

// protoSettings describes proto-held for the settings line, when it runs.
func protoSettings(c *config) string {
	if !c.has(cProto) {
		return ""
	}
	return fmt.Sprintf("; proto-held = bench/protoheld, a prototype holding each batch's row locks in one open transaction "+
		"(%d slots, %d jobs per batch, the next batch's transaction opened when half a batch is left, delete and durable commit per batch)", protoSlots, c.batch)
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = short(x)
	}
	return strings.Join(s, ", ")
}

// targets checks the targets against the medians.
func (b *bench) targets() []string {
	var out []string
	r := b.res
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "NOT MET"
	}
	best := func(metricName string) (string, float64, bool) {
		g, okG := r.median(metricName, cGworker)
		t, okT := r.median(metricName, cTuned)
		switch {
		case okT && (!okG || t >= g):
			return cTuned, t, true
		case okG:
			return cGworker, g, true
		}
		return "", 0, false
	}
	var sqlBest float64
	for _, m := range r.metrics {
		// The target is against core's own statements, not the held-lock
		// design's row.
		if strings.HasPrefix(m.name, sqlLimitCore+", ") {
			if v, ok := r.median(m.name, cPgbench); ok && v > sqlBest {
				sqlBest = v
			}
		}
	}
	for _, m := range r.metrics {
		if !strings.HasPrefix(m.name, "drain N=") {
			continue
		}
		who, g, ok := best(m.name)
		if !ok {
			continue
		}
		for _, peer := range []string{cNode, cRiver} {
			if v, ok := r.median(m.name, peer); ok {
				out = append(out, fmt.Sprintf("%s: %s / %s = %.2f× (target ≥ 2×): %s", m.name, who, peer, g/v, verdict(g/v >= 2)))
			}
		}
		if sqlBest > 0 && m.name == "drain N="+short(slices.Max(b.cfg.drainN)) {
			out = append(out, fmt.Sprintf("%s: %s / best SQL limit = %.0f%% (target ≥ 85%%): %s", m.name, who, 100*g/sqlBest, verdict(g/sqlBest >= 0.85)))
		}
	}
	for _, who := range []string{cGworker, cTuned} {
		if p50, ok := r.median(metricP50.name, who); ok {
			p99, _ := r.median(metricP99.name, who)
			out = append(out, fmt.Sprintf("idle latency %s: p50 %.2f ms (target ≤ 1 ms): %s; p99 %.2f ms (target ≤ 2 ms): %s",
				who, p50, verdict(p50 <= 1), p99, verdict(p99 <= 2)))
		}
	}
	for _, who := range []string{cGworker, cTuned} {
		if p50, ok := r.median(metricWorker(50).name, who); ok {
			p99, _ := r.median(metricWorker(99).name, who)
			out = append(out, fmt.Sprintf("idle latency, worker's share (commit → handler) %s: p50 %.3f ms (target ≤ 0.3 ms): %s; p99 %.3f ms (target ≤ 1 ms): %s",
				who, p50, verdict(p50 <= 0.3), p99, verdict(p99 <= 1)))
		}
	}
	if runs := b.scale.runs; len(runs) > 0 {
		dups := 0
		for _, sr := range runs {
			dups += sr.count.duplicates
		}
		out = append(out, fmt.Sprintf("scale-out duplicates: %d over %d runs (target 0): %s", dups, len(runs), verdict(dups == 0)))
	}
	for _, m := range r.metrics {
		if !strings.HasPrefix(m.name, "bulk insert") {
			continue
		}
		n, okN := r.median(m.name, cNode)
		for _, who := range []string{cGworker, cBulk} {
			if g, ok := r.median(m.name, who); ok && okN {
				out = append(out, fmt.Sprintf("%s: %s / node = %.2f× (target ≥ 2×): %s", m.name, who, g/n, verdict(g/n >= 2)))
			}
		}
	}
	big := "drain N=" + short(b.cfg.bigN)
	for _, who := range []string{cGworker, cTuned} {
		if v, ok := r.median(metricRSS(big).name, who); ok {
			out = append(out, fmt.Sprintf("peak RSS draining %s jobs, %s: %.0f MiB (target < 100 MiB): %s", short(b.cfg.bigN), who, v, verdict(v < 100)))
		}
	}
	small := fmt.Sprintf("fetch %d jobs, %s waiting", b.cfg.batch, short(b.cfg.smallN))
	large := fmt.Sprintf("fetch %d jobs, %s waiting", b.cfg.batch, short(b.cfg.bigN))
	if s, ok := r.median(small, cGworker); ok {
		if l, ok := r.median(large, cGworker); ok {
			out = append(out, fmt.Sprintf("fetch time with %s waiting / with %s waiting = %.2f× (target ≤ 2×): %s", short(b.cfg.bigN), short(b.cfg.smallN), l/s, verdict(l/s <= 2)))
		}
	}
	return out
}

// machine describes where the run happened.
func (b *bench) machine(ctx context.Context) []string {
	var out []string
	cpu := firstMatch("/proc/cpuinfo", "model name")
	out = append(out, fmt.Sprintf("%d CPUs (%s), %s memory, Linux %s", runtime.NumCPU(), cpu, firstMatch("/proc/meminfo", "MemTotal"),
		strings.TrimSpace(readFile("/proc/sys/kernel/osrelease"))))
	var version, fsync, sync, fpw, sb string
	err := b.db.pool.QueryRow(ctx, `select current_setting('server_version'), current_setting('fsync'),
  current_setting('synchronous_commit'), current_setting('full_page_writes'), current_setting('shared_buffers')`).
		Scan(&version, &fsync, &sync, &fpw, &sb)
	if err == nil {
		source := "a throwaway local server (internal/pgtest)"
		if os.Getenv("DATABASE_URL") != "" {
			source = "$DATABASE_URL"
		}
		out = append(out, fmt.Sprintf("PostgreSQL %s on the same machine, %s: fsync=%s synchronous_commit=%s full_page_writes=%s shared_buffers=%s",
			version, source, fsync, sync, fpw, sb))
	}
	out = append(out, "gworker: "+runtimeInfo()+", pgx driver")
	if b.nodeBin != "" {
		v, _ := exec.CommandContext(ctx, b.nodeBin, "--version").Output()
		gw := firstMatch(filepath.Join(b.cfg.nodeDir, "node_modules", "graphile-worker", "package.json"), `"version"`)
		out = append(out, fmt.Sprintf("Node %s, graphile-worker %s", strings.TrimSpace(string(v)), strings.Trim(gw, `", `)))
	}
	if b.cfg.has(cRiver) && b.cfg.peers() {
		out = append(out, "River "+strings.TrimSpace(strings.TrimPrefix(firstMatch(filepath.Join(b.root, "bench", "river", "go.mod"), "github.com/riverqueue/river "), "github.com/riverqueue/river"))+" (riverpgxv5)")
	}
	return out
}

func readFile(path string) string {
	bs, _ := os.ReadFile(path)
	return string(bs)
}

// firstMatch returns what follows the first "prefix" (and a separator) on a
// line of the file.
func firstMatch(path, prefix string) string {
	f, err := os.Open(path)
	if err != nil {
		return "?"
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		l := strings.TrimSpace(s.Text())
		if strings.HasPrefix(l, prefix) {
			return strings.TrimSpace(strings.TrimLeft(strings.TrimPrefix(l, prefix), ":\t "))
		}
	}
	return "?"
}
