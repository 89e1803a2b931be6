package faults

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Environment variables of the suite.
const (
	// chaosEnv=1 selects the long variant (make chaos).
	chaosEnv = "GWORKER_CHAOS"
	// reportEnv names a file to write the results table to.
	reportEnv = "GWORKER_FAULTS_REPORT"
	// logsEnv=1 shows the end of every worker's log, not only a failed
	// scenario's.
	logsEnv = "GWORKER_FAULTS_LOGS"
)

func TestMain(m *testing.M) {
	// The test binary is also the library worker's child process.
	if raw := os.Getenv(childEnv); raw != "" {
		os.Exit(childMain(raw))
	}
	// Build gworker while the clusters start, not when the first scenario
	// that runs it needs it.
	go buildGworker()
	code := m.Run()
	if err := writeReport(); err != nil {
		fmt.Fprintln(os.Stderr, "faults:", err)
		if code == 0 {
			code = 1
		}
	}
	removeBuildDir()
	os.Exit(code)
}

// profile sizes a run of the suite.
type profile struct {
	name string
	// rate is how many jobs a second the producer adds while the load runs.
	rate int
	// libWorkers is how many library worker processes most scenarios run.
	libWorkers int
	// concurrency is each worker process's.
	concurrency int
	// maxSleep bounds a handler's random run time.
	maxSleep time.Duration
	// window is how long a fault that is a state (read-only, no
	// connections, a held lock, the schema gone) lasts.
	window time.Duration
	// terminateFor is how long backends are terminated once a second.
	terminateFor time.Duration
	// repeats is how many times each fault is applied.
	repeats int
	// loadBefore is how long the load runs before a fault, loadAfter after.
	loadBefore, loadAfter time.Duration
	// drainWithin bounds the time from a fault's end to an empty jobs table.
	drainWithin time.Duration
}

var quick = profile{
	name:         "quick",
	rate:         200,
	libWorkers:   2,
	concurrency:  4,
	maxSleep:     5 * time.Millisecond,
	window:       10 * time.Second,
	terminateFor: 10 * time.Second,
	repeats:      1,
	loadBefore:   2 * time.Second,
	loadAfter:    2 * time.Second,
	drainWithin:  45 * time.Second,
}

var chaos = profile{
	name:         "chaos",
	rate:         1000,
	libWorkers:   4,
	concurrency:  8,
	maxSleep:     10 * time.Millisecond,
	window:       30 * time.Second,
	terminateFor: 30 * time.Second,
	repeats:      3,
	loadBefore:   5 * time.Second,
	loadAfter:    5 * time.Second,
	drainWithin:  2 * time.Minute,
}

// currentProfile is chaos under GWORKER_CHAOS=1, else quick.
func currentProfile() profile {
	if os.Getenv(chaosEnv) == "1" {
		return chaos
	}
	return quick
}

// result is one scenario's line in the report.
type result struct {
	scenario   string
	jobs       int
	lost       int
	duplicates int // unexplained
	explained  int // duplicates a crash explains
	firstRun   time.Duration
	drained    time.Duration
	recovered  bool // both times were measured
	failures   []string
	notes      []string
}

var report struct {
	mu      sync.Mutex
	results []result
}

func addResult(r result) {
	report.mu.Lock()
	defer report.mu.Unlock()
	report.results = append(report.results, r)
}

// reportTable renders the results as Markdown, in scenario order.
func reportTable() string {
	report.mu.Lock()
	rs := slices.Clone(report.results)
	report.mu.Unlock()
	if len(rs) == 0 {
		return ""
	}
	slices.SortFunc(rs, func(a, b result) int { return strings.Compare(a.scenario, b.scenario) })
	var b strings.Builder
	fmt.Fprintf(&b, "Profile %s, %s/%s, %d CPUs, %s.\n\n", currentProfile().name, runtime.GOOS, runtime.GOARCH,
		runtime.NumCPU(), time.Now().UTC().Format("2006-01-02"))
	b.WriteString("| scenario | jobs | lost | duplicates | time to recover (first job run / table empty) | result |\n")
	b.WriteString("|---|---:|---:|---:|---|---|\n")
	for _, r := range rs {
		dups := fmt.Sprint(r.duplicates)
		if r.explained > 0 {
			dups += fmt.Sprintf(" (+%d after a kill or crash)", r.explained)
		}
		recovery := "not recovered"
		if r.recovered {
			recovery = fmt.Sprintf("%.1f s / %.1f s", r.firstRun.Seconds(), r.drained.Seconds())
		}
		status := "pass"
		if len(r.failures) > 0 {
			status = "**FAIL**: " + strings.Join(r.failures, "; ")
		}
		if len(r.notes) > 0 {
			status += " (" + strings.Join(r.notes, "; ") + ")"
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %s | %s | %s |\n", r.scenario, r.jobs, r.lost, dups, recovery,
			strings.ReplaceAll(status, "|", "/"))
	}
	return b.String()
}

func writeReport() error {
	table := reportTable()
	if table == "" {
		return nil
	}
	fmt.Print("\n" + table)
	if path := os.Getenv(reportEnv); path != "" {
		if err := os.WriteFile(path, []byte(table), 0o644); err != nil {
			return fmt.Errorf("write the report: %w", err)
		}
	}
	return nil
}

// The gworker command, built once for the scenarios that run it.
var gworkerBuild struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// gworkerBinary builds cmd/gworker (without the race detector: it is the
// system under test, not the test) into a temporary directory, once.
func gworkerBinary(t *testing.T) string {
	t.Helper()
	if err := buildGworker(); err != nil {
		t.Fatal(err)
	}
	return gworkerBuild.path
}

func buildGworker() error {
	b := &gworkerBuild
	b.once.Do(func() {
		b.dir, b.err = os.MkdirTemp("", "gworker-faults-bin-")
		if b.err != nil {
			return
		}
		goTool, err := exec.LookPath("go")
		if err != nil {
			b.err = fmt.Errorf("the go command is needed to build gworker: %w", err)
			return
		}
		b.path = filepath.Join(b.dir, "gworker")
		cmd := exec.Command(goTool, "build", "-o", b.path, "github.com/gworker/gworker/cmd/gworker")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build cmd/gworker: %v\n%s", err, out)
		}
	})
	return b.err
}

func removeBuildDir() {
	gworkerBuild.once.Do(func() {}) // waits for a build under way
	if gworkerBuild.dir != "" {
		_ = os.RemoveAll(gworkerBuild.dir)
	}
}
