package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/driver/pgxdriver"
	"github.com/gworker/gworker/internal/pgtest"
)

const (
	// workerRole is the role the workers connect as: not a superuser, so
	// that role settings and a connection limit apply to it.
	workerRole = "gworker_faults"
	// database is the workers' database; the role owns it.
	database = "faults"
	// schema is the graphile-worker schema; each scenario has a cluster of
	// its own, so one name does.
	schema = "gw"
	// harnessApp is the application_name of the harness's own sessions,
	// which faults aimed at the workers leave alone.
	harnessApp = "gworker-faults-harness"
)

// scenario is one fault scenario: its cluster, its worker processes, the
// jobs it added and what it measured.
type scenario struct {
	t    *testing.T
	prof profile
	// rate is the producer's jobs per second: the profile's, unless the
	// scenario's workers cannot keep up with it.
	rate int
	dir  string
	srv  *pgtest.Server
	port int
	// workerURL reaches the database as workerRole, directly.
	workerURL string
	// admin is the harness's pool on the workers' database, as superuser.
	admin *pgxpool.Pool
	utils *core.Utils

	procs []*proc
	seq   atomic.Int64 // the last job number handed out

	mu        sync.Mutex
	added     map[int64]time.Time // job number → when its insert committed
	removed   map[int64]bool      // jobs the fault itself deleted (dropped schema)
	addErrors int
	windows   []*window
	crashes   []crash // immediate shutdowns: fetches committed without a flush may be forgotten
	load      *producer

	res result
}

// crash is an immediate shutdown of the server: from the signal to the
// postmaster (at) to its exit (down), after every backend's.
type crash struct {
	at, down time.Time
	// walWriterDelay is the server's wal_writer_delay when it crashed.
	walWriterDelay time.Duration
}

// window is one application of a fault, from its start to the moment it
// is over (the server answers again, the setting is reset, ...).
type window struct {
	start, end time.Time
	drainedAt  time.Time // when the jobs table was empty after it
	opts       faultOptions
	cpuFrom    map[*proc]cpuSample // taken a second into the fault
	cpuFromMu  sync.Mutex
}

// faultOptions say what a fault window checks besides jobs.
type faultOptions struct {
	// idle: nothing can progress during the fault, so the workers must not
	// use more than maxCPUShare of a core.
	idle bool
	// expectLog: the workers must say (WARN or ERROR) that something is
	// wrong.
	expectLog bool
	// maxLogLines bounds each process's WARN and ERROR lines from the
	// fault's start to a few seconds after its end; 0 means
	// defaultMaxLogLines.
	maxLogLines int
}

const (
	// maxCPUShare of one core is what an idle worker may use while it
	// cannot reach its database: enough for retries with backoff under the
	// race detector, far below a spinning loop.
	maxCPUShare = 0.2
	// defaultMaxLogLines bounds the warnings and errors one process logs for
	// one fault: a few for the outage, one per component, one when it is
	// over, not one per retry or per job.
	defaultMaxLogLines = 25
	// logSettle is how long after a fault's end its log lines still count.
	logSettle = 3 * time.Second
)

// newScenario starts a cluster of the scenario's own, with a database and
// a role for the workers, and migrates the schema as that role.
func newScenario(t *testing.T, name string) *scenario {
	t.Helper()
	s := &scenario{
		t:       t,
		prof:    currentProfile(),
		rate:    currentProfile().rate,
		dir:     t.TempDir(),
		added:   map[int64]time.Time{},
		removed: map[int64]bool{},
		res:     result{scenario: name},
	}
	t.Cleanup(func() {
		if t.Failed() && len(s.res.failures) == 0 {
			s.res.failures = append(s.res.failures, "the harness failed; see the test log")
		}
		addResult(s.res)
	})
	// Children write their runs files as whatever user we are; the cluster
	// may run as another and never touches this directory.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := pgtest.StartLocal(ctx, pgtest.Options{
		// Durable commits, so that an immediate shutdown loses only what
		// gworker chose to commit without waiting (its fetches). fsync
		// stays off: the machine itself does not crash.
		Settings: map[string]string{"synchronous_commit": "on"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Errorf("stop the cluster: %v", err)
		}
	})
	s.srv = srv
	u, err := url.Parse(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	if s.port, err = strconv.Atoi(u.Port()); err != nil {
		t.Fatal(err)
	}
	s.exec(ctx, "postgres",
		"create role "+workerRole+" login",
		"create database "+database+" owner "+workerRole)
	s.workerURL = s.urlOn(s.port, workerRole)

	db, err := pgxdriver.Open(ctx, s.workerURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := core.Migrate(ctx, db, core.MigrateOptions{Schema: schema}); err != nil {
		t.Fatal(err)
	}

	cfg, err := pgxpool.ParseConfig(s.adminURL(database))
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 4
	if s.admin, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.admin.Close)
	if s.utils, err = core.NewUtils(pgxdriver.New(s.admin), core.UtilsOptions{Schema: schema}); err != nil {
		t.Fatal(err)
	}
	return s
}

// urlOn is the workers' connection string through port (the server's, or a
// proxy's in front of it).
func (s *scenario) urlOn(port int, role string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", role, port, database)
}

// adminURL is the superuser's, marked as the harness's and immune to the
// read-only fault.
func (s *scenario) adminURL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable&application_name=%s&default_transaction_read_only=off",
		s.port, db, harnessApp)
}

// exec runs statements as superuser on db, each on its own, on a
// connection of its own, failing the test on error.
func (s *scenario) exec(ctx context.Context, db string, stmts ...string) {
	s.t.Helper()
	if err := s.tryExec(ctx, db, stmts...); err != nil {
		s.t.Fatal(err)
	}
}

func (s *scenario) tryExec(ctx context.Context, db string, stmts ...string) error {
	conn, err := pgx.Connect(ctx, s.adminURL(db))
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for _, stmt := range stmts {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("%s: %w", stmt, err)
		}
	}
	return nil
}

// failf records a failed check in the report and fails the test.
func (s *scenario) failf(format string, args ...any) {
	s.t.Helper()
	msg := fmt.Sprintf(format, args...)
	s.t.Error(msg)
	summary, _, _ := strings.Cut(msg, "\n")
	summary = strings.TrimSuffix(summary, ":")
	s.mu.Lock()
	s.res.failures = append(s.res.failures, summary)
	s.mu.Unlock()
}

// procSpec describes a worker process.
type procSpec struct {
	name string
	// gworker runs `gworker run` with executable tasks instead of the
	// library's Worker in a child process.
	gworker      bool
	concurrency  int
	localQueue   int
	batchDelay   time.Duration
	pollInterval time.Duration
	recovery     core.RecoveryOptions
	// url overrides the scenario's workerURL (a proxy's).
	url string
	// env is added to a gworker process's environment.
	env []string
}

// proc is a running worker process.
type proc struct {
	spec     procSpec
	runsFile string
	cmd      *exec.Cmd
	stdin    io.WriteCloser // the library child's: closing it stops the worker
	log      *logRecorder
	exited   chan struct{} // closed once cmd.Wait returned
	waitErr  error
	killedAt time.Time // when the scenario SIGKILLed it
}

func (p *proc) alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// lib and gworkerRun are the usual worker specs of the current profile.
func (s *scenario) lib(name string) procSpec {
	return procSpec{name: name, concurrency: s.prof.concurrency}
}

// gworkerRun's concurrency is twice the library's: each of its jobs forks
// a shell and two date processes, which take longer than a handler.
func (s *scenario) gworkerRun(name string) procSpec {
	return procSpec{name: name, gworker: true, concurrency: 2 * s.prof.concurrency}
}

// libWorkers are the profile's number of library workers, alternating
// between the plain setup and one with a local queue and batched outcomes.
func (s *scenario) libWorkers(adjust func(*procSpec)) []procSpec {
	var specs []procSpec
	for i := range s.prof.libWorkers {
		spec := s.lib(string(rune('a' + i)))
		if i%2 == 1 {
			spec.localQueue = 2 * spec.concurrency
			spec.batchDelay = 50 * time.Millisecond
		}
		if adjust != nil {
			adjust(&spec)
		}
		specs = append(specs, spec)
	}
	return specs
}

// start starts the worker processes; the test's cleanup kills any still
// running.
func (s *scenario) start(specs ...procSpec) []*proc {
	s.t.Helper()
	var started []*proc
	for _, spec := range specs {
		p := &proc{spec: spec, runsFile: filepath.Join(s.dir, "runs-"+spec.name+".log"), log: &logRecorder{}, exited: make(chan struct{})}
		if spec.url == "" {
			spec.url = s.workerURL
			p.spec.url = spec.url
		}
		if spec.gworker {
			p.cmd = s.gworkerCommand(p)
		} else {
			cfg, err := json.Marshal(childConfig{
				URL: spec.url, Schema: schema, Name: spec.name, RunsFile: p.runsFile,
				Concurrency: spec.concurrency, LocalQueue: spec.localQueue, BatchDelay: spec.batchDelay,
				PollInterval: spec.pollInterval, Recovery: spec.recovery, MaxSleep: s.prof.maxSleep,
			})
			if err != nil {
				s.t.Fatal(err)
			}
			p.cmd = exec.Command(os.Args[0], "-test.run=^$")
			p.cmd.Env = append(os.Environ(), childEnv+"="+string(cfg))
			if p.stdin, err = p.cmd.StdinPipe(); err != nil {
				s.t.Fatal(err)
			}
		}
		p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
		if err := p.cmd.Start(); err != nil {
			s.t.Fatal(err)
		}
		go func() {
			p.waitErr = p.cmd.Wait()
			close(p.exited)
		}()
		s.t.Cleanup(func() {
			if p.alive() {
				_ = p.cmd.Process.Kill()
			}
			<-p.exited
			if s.t.Failed() || os.Getenv(logsEnv) == "1" {
				s.t.Logf("%s's log (%s):\n%s", spec.name, p.cmd.Path, p.log.tail(60))
			}
		})
		s.procs = append(s.procs, p)
		started = append(started, p)
	}
	return started
}

// taskScript is the gworker run task for both task names: it records the
// run as the library child does, fails a job's first attempt when its
// payload says so, and, as the long task in the worker named by
// $FAULTS_LONG_WORKER, first records its process id and sleeps (in a
// child process, as real tasks have them) for two minutes.
const taskScript = `#!/bin/sh
start=$(date +%s%N)
IFS= read -r input || true
n=${input#*'"n":'}
n=${n# }
n=${n%%[!0-9]*}
if [ "$GRAPHILE_WORKER_TASK_IDENTIFIER" = long ] && [ "$FAULTS_WORKER" = "$FAULTS_LONG_WORKER" ]; then
	echo $$ >> "$FAULTS_DIR/long-pids"
	sleep 120
fi
outcome=ok
case $input in
*'"fail": true'* | *'"fail":true'*) [ "$GRAPHILE_WORKER_JOB_ATTEMPTS" = 1 ] && outcome=fail ;;
esac
echo "$n $GRAPHILE_WORKER_JOB_ID $GRAPHILE_WORKER_JOB_ATTEMPTS $FAULTS_WORKER $start $(date +%s%N) $outcome 0 0" >> "$FAULTS_RUNS"
[ $outcome = ok ] || { echo "` + deliberateFailure + `" >&2; exit 1; }
`

func (s *scenario) gworkerCommand(p *proc) *exec.Cmd {
	s.t.Helper()
	bin := gworkerBinary(s.t)
	tasks := filepath.Join(s.dir, "tasks-"+p.spec.name)
	if err := os.MkdirAll(tasks, 0o755); err != nil {
		s.t.Fatal(err)
	}
	for _, name := range []string{taskName, longTaskName} {
		if err := os.WriteFile(filepath.Join(tasks, name+".sh"), []byte(taskScript), 0o755); err != nil {
			s.t.Fatal(err)
		}
	}
	spec := p.spec
	args := []string{"run", "-c", spec.url, "-s", schema, "--tasks", tasks, "-j", strconv.Itoa(spec.concurrency),
		// The harness migrated already: a fresh process only checks.
		"--grace-period", "5s"}
	if spec.pollInterval > 0 {
		args = append(args, "--poll-interval", spec.pollInterval.String())
	}
	if spec.localQueue > 0 {
		args = append(args, "--local-queue", strconv.Itoa(spec.localQueue))
	}
	if spec.batchDelay > 0 {
		args = append(args, "--batch-delay", spec.batchDelay.String())
	}
	if r := spec.recovery; r.HeartbeatInterval > 0 {
		delay := max(r.Delay, 0)
		args = append(args, "--heartbeat-interval", r.HeartbeatInterval.String(),
			"--sweep-interval", r.SweepInterval.String(), "--sweep-threshold", r.StaleThreshold.String(),
			"--recovery-delay", delay.String())
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(),
		"FAULTS_RUNS="+p.runsFile, "FAULTS_WORKER="+spec.name, "FAULTS_DIR="+s.dir)
	cmd.Env = append(cmd.Env, spec.env...)
	return cmd
}

// stopAll stops every live worker gracefully and checks it exits cleanly
// and in time.
func (s *scenario) stopAll() {
	s.t.Helper()
	for _, p := range s.procs {
		if !p.alive() {
			continue
		}
		if p.stdin != nil {
			_ = p.stdin.Close()
		} else {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	deadline := time.After(30 * time.Second)
	for _, p := range s.procs {
		if !p.killedAt.IsZero() {
			continue
		}
		select {
		case <-p.exited:
			if p.waitErr != nil {
				s.failf("%s did not stop cleanly: %v\n%s", p.spec.name, p.waitErr, p.log.tail(30))
			}
		case <-deadline:
			s.failf("%s did not stop within 30s of being asked to", p.spec.name)
		}
	}
}

// kill SIGKILLs p and waits until it is gone.
func (s *scenario) kill(p *proc) {
	s.t.Helper()
	p.killedAt = time.Now()
	if err := p.cmd.Process.Kill(); err != nil {
		s.t.Fatalf("kill %s: %v", p.spec.name, err)
	}
	<-p.exited
}

// logRecorder keeps a process's output lines with the time each arrived.
type logRecorder struct {
	mu      sync.Mutex
	partial []byte
	lines   []logLine
}

type logLine struct {
	at   time.Time
	text string
}

func (l *logRecorder) Write(p []byte) (int, error) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.lines = append(l.lines, logLine{at: now, text: string(l.partial[:i])})
		l.partial = l.partial[i+1:]
	}
	return len(p), nil
}

// between returns the lines that arrived in [from, to].
func (l *logRecorder) between(from, to time.Time) []logLine {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []logLine
	for _, line := range l.lines {
		if !line.at.Before(from) && !line.at.After(to) {
			out = append(out, line)
		}
	}
	return out
}

func (l *logRecorder) tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	lines := l.lines
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	var b strings.Builder
	for _, line := range lines {
		fmt.Fprintf(&b, "%s %s\n", line.at.Format("15:04:05.000"), line.text)
	}
	return b.String()
}

// producer adds jobs at the profile's rate until stopped.
type producer struct {
	stop chan struct{}
	done chan struct{}
}

// Every tick the producer adds rate/ticksPerSecond jobs in one statement.
const ticksPerSecond = 20

// startLoad starts adding jobs steadily.
func (s *scenario) startLoad() {
	p := &producer{stop: make(chan struct{}), done: make(chan struct{})}
	s.load = p
	go func() {
		defer close(p.done)
		tick := time.NewTicker(time.Second / ticksPerSecond)
		defer tick.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-tick.C:
			}
			if err := s.addJobs(max(1, s.rate/ticksPerSecond), nil); err != nil {
				// The database is away: do not hammer it.
				select {
				case <-p.stop:
					return
				case <-time.After(200 * time.Millisecond):
				}
			}
		}
	}()
}

// stopLoad stops the producer and waits for its last statement.
func (s *scenario) stopLoad() {
	if s.load == nil {
		return
	}
	close(s.load.stop)
	<-s.load.done
	s.load = nil
}

// jobSpec is how the producer varies its jobs: one in ten goes to one of
// four named queues, one in twenty fails its first attempt.
func jobSpec(n int64) (jobPayload, core.JobSpec) {
	p := jobPayload{N: n, Fail: n%20 == 0}
	var spec core.JobSpec
	if n%10 == 1 {
		spec.QueueName = "q" + strconv.FormatInt(n/10%4, 10)
	}
	return p, spec
}

// addJobs adds count jobs in one statement; edit may change each. Only jobs
// whose insert is known to have committed count as added: when the result
// is unknown, their numbers are never used again, so a job that did commit
// runs without being mistaken for another.
func (s *scenario) addJobs(count int, edit func(*core.NewJob)) error {
	jobs := make([]core.NewJob, count)
	nums := make([]int64, count)
	for i := range jobs {
		n := s.seq.Add(1)
		p, spec := jobSpec(n)
		jobs[i] = core.NewJob{Identifier: taskName, Payload: p, Spec: spec}
		if edit != nil {
			edit(&jobs[i])
		}
		nums[i] = n
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := s.utils.AddJobs(ctx, jobs)
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.addErrors++
		return err
	}
	for _, n := range nums {
		s.added[n] = now
	}
	return nil
}

// mustAddJobs adds jobs when the database is known to be up.
func (s *scenario) mustAddJobs(count int, edit func(*core.NewJob)) {
	s.t.Helper()
	if err := s.addJobs(count, edit); err != nil {
		s.t.Fatalf("add jobs: %v", err)
	}
}

// jobsLeft counts the rows of the jobs table.
func (s *scenario) jobsLeft(ctx context.Context) (int, error) {
	var n int
	err := s.admin.QueryRow(ctx, "select count(*) from "+schema+"._private_jobs").Scan(&n)
	return n, err
}

// waitDrained waits until the jobs table is empty, at most within after
// from; it returns when it was, or fails the scenario with what is left.
func (s *scenario) waitDrained(from time.Time, within time.Duration) (time.Time, bool) {
	s.t.Helper()
	deadline := from.Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		n, err := s.jobsLeft(ctx)
		cancel()
		if err == nil && n == 0 {
			return time.Now(), true
		}
		if time.Now().After(deadline) {
			s.failf("the jobs table still holds %d jobs %v after %s (err %v):\n%s",
				n, within, from.Format("15:04:05.000"), err, s.describeJobsLeft())
			return time.Time{}, false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// describeJobsLeft lists what is left in the jobs table, for a failure.
func (s *scenario) describeJobsLeft() string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rows, err := s.admin.Query(ctx, `select j.id, j.payload::text, coalesce(q.queue_name, ''), j.attempts,
	coalesce(j.locked_by, ''), coalesce(to_char(j.locked_at, 'HH24:MI:SS.MS'), ''), to_char(j.run_at, 'HH24:MI:SS.MS'),
	coalesce(left(j.last_error, 120), ''), coalesce(q.locked_by, '')
from `+schema+`._private_jobs j left join `+schema+`._private_job_queues q on q.id = j.job_queue_id
order by j.id limit 20`)
	if err != nil {
		return "(cannot list them: " + err.Error() + ")"
	}
	defer rows.Close()
	var b strings.Builder
	b.WriteString("  id payload queue attempts locked_by locked_at run_at last_error queue_locked_by\n")
	for rows.Next() {
		var id int64
		var attempts int16
		var payload, queue, lockedBy, lockedAt, runAt, lastErr, queueLockedBy string
		if err := rows.Scan(&id, &payload, &queue, &attempts, &lockedBy, &lockedAt, &runAt, &lastErr, &queueLockedBy); err != nil {
			return b.String() + "(" + err.Error() + ")"
		}
		fmt.Fprintf(&b, "  %d %s %q %d %q %s %s %q %q\n", id, payload, queue, attempts, lockedBy, lockedAt, runAt, lastErr, queueLockedBy)
	}
	return b.String()
}

// waitEachRan waits until every live worker process recorded a run, so
// that the fault finds them all at work.
func (s *scenario) waitEachRan() {
	s.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for _, p := range s.procs {
		for {
			if fi, err := os.Stat(p.runsFile); err == nil && fi.Size() > 0 {
				break
			}
			if !p.alive() {
				s.t.Fatalf("%s exited before running a job: %v\n%s", p.spec.name, p.waitErr, p.log.tail(30))
			}
			if time.Now().After(deadline) {
				s.t.Fatalf("%s ran no job within 60s\n%s", p.spec.name, p.log.tail(30))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// beginFault opens a fault window; endFault closes it once the fault is
// over.
func (s *scenario) beginFault(opts faultOptions) *window {
	w := &window{start: time.Now(), opts: opts, cpuFrom: map[*proc]cpuSample{}}
	s.mu.Lock()
	s.windows = append(s.windows, w)
	s.mu.Unlock()
	if opts.idle {
		// The first second belongs to the reaction to the fault (handlers
		// finishing, connections failing); idleness is measured after it.
		procs := s.procs
		go func() {
			time.Sleep(time.Second)
			w.cpuFromMu.Lock()
			defer w.cpuFromMu.Unlock()
			for _, p := range procs {
				if c, err := readCPU(p.cmd.Process.Pid); err == nil && p.alive() {
					w.cpuFrom[p] = c
				}
			}
		}()
	}
	return w
}

func (s *scenario) endFault(w *window) {
	w.end = time.Now()
	if !w.opts.idle {
		return
	}
	w.cpuFromMu.Lock()
	defer w.cpuFromMu.Unlock()
	for p, from := range w.cpuFrom {
		to, err := readCPU(p.cmd.Process.Pid)
		if err != nil || !p.alive() {
			continue // the liveness check reports it
		}
		wall := to.at.Sub(from.at)
		if wall < time.Second {
			continue
		}
		share := float64(to.cpu-from.cpu) / float64(wall)
		s.t.Logf("%s used %.1f%% of a core during the fault (%v CPU over %v)", p.spec.name, 100*share,
			(to.cpu - from.cpu).Round(time.Millisecond), wall.Round(time.Millisecond))
		if share > maxCPUShare {
			s.failf("%s used %.0f%% of a core while the database could not be used (%v CPU in %v); the limit is %.0f%%",
				p.spec.name, 100*share, to.cpu-from.cpu, wall.Round(time.Millisecond), 100*maxCPUShare)
		}
	}
}

// cpuSample is a process's CPU time (user + system) at a moment.
type cpuSample struct {
	at  time.Time
	cpu time.Duration
}

// clockTicks is the kernel's USER_HZ, which /proc/PID/stat counts in; 100
// on every Linux architecture Go supports.
const clockTicks = 100

// readCPU reads a process's CPU time from /proc/PID/stat (Linux).
func readCPU(pid int) (cpuSample, error) {
	now := time.Now()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return cpuSample{}, err
	}
	// The command name, field 2, is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return cpuSample{}, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return cpuSample{}, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f)+2)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return cpuSample{}, fmt.Errorf("/proc/%d/stat: utime %q stime %q", pid, f[11], f[12])
	}
	return cpuSample{at: now, cpu: time.Duration(utime+stime) * time.Second / clockTicks}, nil
}

// listenLocal listens on a free port of 127.0.0.1, for the proxy.
func listenLocal(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}
