package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gworker/gworker/internal/testkit"
)

// readEnvFile reads the key=value lines a test script wrote.
func readEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the task did not write its report: %v", err)
	}
	m := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		k, v, _ := strings.Cut(line, "=")
		m[k] = v
	}
	return m
}

// reportScript writes its standard input and the job's environment to
// OUT/<job id>, then prints a line on standard output.
func reportScript(out string) string {
	return fmt.Sprintf(`out=%q
{
  echo "stdin=$(cat)"
  echo "format=$GRAPHILE_WORKER_PAYLOAD_FORMAT"
  echo "identifier=$GRAPHILE_WORKER_TASK_IDENTIFIER"
  echo "job_id=$GRAPHILE_WORKER_JOB_ID"
  echo "key=$GRAPHILE_WORKER_JOB_KEY"
  echo "attempts=$GRAPHILE_WORKER_JOB_ATTEMPTS"
  echo "max_attempts=$GRAPHILE_WORKER_JOB_MAX_ATTEMPTS"
  echo "priority=$GRAPHILE_WORKER_JOB_PRIORITY"
  echo "run_at=$GRAPHILE_WORKER_JOB_RUN_AT"
} > "$out/$GRAPHILE_WORKER_JOB_ID.tmp"
mv "$out/$GRAPHILE_WORKER_JOB_ID.tmp" "$out/$GRAPHILE_WORKER_JOB_ID"
echo "report written for job $GRAPHILE_WORKER_JOB_ID"
`, out)
}

func TestRunOnceRunsExecutableTaskWithPayloadAndEnvironment(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.migrate(t)
	tasks, out := t.TempDir(), t.TempDir()
	writeScript(t, tasks, "report.sh", reportScript(out))
	runAt := time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond)
	job := b.add(t, "report", `{"n": 42, "s": "hé \"quoted\""}`, "--key", "r-1", "--priority", "3",
		"--max-attempts", "4", "--run-at", runAt.Format(time.RFC3339Nano))

	r := b.cli(t, "run", "--once", "--tasks", tasks)
	if r.code != 0 {
		t.Fatalf("run --once: exit %d, stderr:\n%s", r.code, r.stderr)
	}

	env := readEnvFile(t, filepath.Join(out, strconv.FormatInt(job.ID, 10)))
	var stdin struct {
		Payload struct {
			N int    `json:"n"`
			S string `json:"s"`
		} `json:"payload"`
	}
	if err := json.Unmarshal([]byte(env["stdin"]), &stdin); err != nil || stdin.Payload.N != 42 || stdin.Payload.S != `hé "quoted"` {
		t.Errorf(`stdin %q (%v), want {"payload": {"n": 42, "s": "hé \"quoted\""}}`, env["stdin"], err)
	}
	want := map[string]string{
		"format": "json", "identifier": "report", "job_id": strconv.FormatInt(job.ID, 10), "key": "r-1",
		"attempts": "1", "max_attempts": "4", "priority": "3",
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s = %q, want %q", k, env[k], v)
		}
	}
	if got, err := time.Parse(time.RFC3339Nano, env["run_at"]); err != nil || !got.Equal(runAt) {
		t.Errorf("run_at = %q (%v), want %s", env["run_at"], err, runAt.Format(time.RFC3339Nano))
	}
	if b.job(t, job.ID).present {
		t.Error("the job is still in the table after its task exited 0")
	}
	if !strings.Contains(r.stderr, fmt.Sprintf("report written for job %d", job.ID)) {
		t.Errorf("the task's standard output was not logged:\n%s", r.stderr)
	}
}

func TestRunOnceFailingTaskRecordsStatusAndStderr(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.migrate(t)
	tasks := t.TempDir()
	writeScript(t, tasks, "flaky.sh", `echo "starting up"
echo "disk on fire: cannot write /var/spool" >&2
exit 3
`)
	job := b.add(t, "flaky")

	r := b.cli(t, "run", "--once", "--tasks", tasks)
	if r.code != exitError {
		t.Fatalf("run --once: exit %d, want %d when a job failed; stderr:\n%s", r.code, exitError, r.stderr)
	}
	got := b.job(t, job.ID)
	if !got.present {
		t.Fatal("the failed job left the table")
	}
	if got.attempts != 1 || got.locked || !got.runAtInFuture {
		t.Errorf("attempts %d, locked %v, run_at in the future %v; want 1, false, true (backoff)", got.attempts, got.locked, got.runAtInFuture)
	}
	if got.lastError == nil || !strings.Contains(*got.lastError, "status 3") || !strings.Contains(*got.lastError, "disk on fire: cannot write /var/spool") {
		t.Errorf("last_error = %q, want the exit status 3 and the standard error", deref(got.lastError))
	}
	if strings.Contains(deref(got.lastError), "starting up") {
		t.Errorf("last_error = %q holds standard output", deref(got.lastError))
	}
}

func TestRunOnceLongStderrKeepsItsEnd(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.migrate(t)
	tasks := t.TempDir()
	writeScript(t, tasks, "noisy", `i=0
while [ $i -lt 400 ]; do echo "noise line $i" >&2; i=$((i+1)); done
printf 'the real reason\000 at the end' >&2
exit 1
`)
	job := b.add(t, "noisy")
	if r := b.cli(t, "run", "--once", "--tasks", tasks); r.code != exitError {
		t.Fatalf("run --once: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	msg := deref(b.job(t, job.ID).lastError)
	if !strings.HasPrefix(msg, "task exited with status 1: …") || !strings.HasSuffix(msg, "the real reason at the end") ||
		strings.Contains(msg, "noise line 0\n") || len(msg) > stderrTailBytes+100 {
		t.Errorf("last_error (%d bytes) = %q; want the status, then the last ~2 KB of stderr without NUL", len(msg), msg)
	}
}

func TestRunOnceNestedTasksAndJobsWithoutTask(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.migrate(t)
	tasks, out := t.TempDir(), t.TempDir()
	writeScript(t, tasks, "sub/dir/task.sh", reportScript(out))
	if err := os.WriteFile(filepath.Join(tasks, "notes.txt"), []byte("not a task"), 0o644); err != nil {
		t.Fatal(err)
	}
	nested := b.add(t, "sub/dir/task", `{"nested": true}`)
	orphan := b.add(t, "nobody_runs_this")
	notes := b.add(t, "notes")

	if r := b.cli(t, "run", "--once", "--tasks", tasks); r.code != 0 {
		t.Fatalf("run --once: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	env := readEnvFile(t, filepath.Join(out, strconv.FormatInt(nested.ID, 10)))
	if env["identifier"] != "sub/dir/task" {
		t.Errorf("identifier = %q, want sub/dir/task", env["identifier"])
	}
	if b.job(t, nested.ID).present {
		t.Error("the nested task's job is still in the table")
	}
	for _, id := range []int64{orphan.ID, notes.ID} {
		got := b.job(t, id)
		if !got.present || got.attempts != 0 || got.locked || got.lastError != nil {
			t.Errorf("job %d of a task without an executable file = %+v; want it untouched", id, got)
		}
	}
}

func TestRunSignalsTaskOnShutdownAndReturnsItsJob(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.migrate(t)
	tasks, marks := t.TempDir(), t.TempDir()
	started, term := filepath.Join(marks, "started"), filepath.Join(marks, "term")
	writeScript(t, tasks, "long.sh", fmt.Sprintf(`trap 'echo term > %q; exit 0' TERM
echo started > %q
while :; do sleep 0.05; done
`, term, started))
	job := b.add(t, "long")

	ctx, cancel := context.WithCancel(b.ctx)
	defer cancel()
	done := make(chan result, 1)
	go func() {
		done <- runCLI(ctx, b.env(), "run", "--tasks", tasks, "--grace-period", "100ms", "--poll-interval", "100ms", "-j", "2")
	}()
	exists := func(p string) func() bool {
		return func() bool { _, err := os.Stat(p); return err == nil }
	}
	testkit.EventuallyWithin(t, time.Minute, "the task to start", exists(started))
	cancel()

	var r result
	select {
	case r = <-done:
	case <-time.After(time.Minute):
		t.Fatal("run did not return within a minute of cancellation")
	}
	if r.code != 0 {
		t.Fatalf("run: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	if b, err := os.ReadFile(term); err != nil || strings.TrimSpace(string(b)) != "term" {
		t.Fatalf("the task did not get SIGTERM: %q, %v\nstderr:\n%s", b, err, r.stderr)
	}
	got := b.job(t, job.ID)
	if !got.present || got.attempts != 0 || got.locked {
		t.Errorf("job after shutdown = %+v; want it back in the queue, unlocked, attempts 0", got)
	}
	if !strings.Contains(deref(got.lastError), "interrupted") {
		t.Errorf("last_error = %q, want it to say the job was interrupted", deref(got.lastError))
	}
}

func TestRunWithoutTasksNamesTheDirectory(t *testing.T) {
	t.Parallel()
	b := setup(t)
	empty := t.TempDir()
	if err := os.WriteFile(filepath.Join(empty, "readme.md"), []byte("hi"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := b.cli(t, "run", "--once", "--tasks", empty)
	assertOneLineError(t, r, empty, "no tasks")

	missing := filepath.Join(empty, "missing")
	r = b.cli(t, "run", "--once", "--tasks", missing)
	assertOneLineError(t, r, missing, "does not exist")
}

func TestRunRejectsTwoFilesWithOneIdentifier(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tasks := t.TempDir()
	writeScript(t, tasks, "a/b.sh", "exit 0\n")
	writeScript(t, tasks, "a/b.py", "exit 0\n")
	r := b.cli(t, "run", "--once", "--tasks", tasks)
	assertOneLineError(t, r, `"a/b"`, "a/b.sh", "a/b.py")
}

func TestRunRejectsBadFlagValues(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, tt := range []struct{ args, want []string }{
		{[]string{"--poll-interval", "often"}, []string{"--poll-interval", `"often"`}},
		{[]string{"-j", "0"}, []string{"-j", `"0"`}},
		{[]string{"--jobs", "many"}, []string{"--jobs", `"many"`}},
		{[]string{"--grace-period", "-1s"}, []string{"--grace-period"}},
		{[]string{"--local-queue", "-5"}, []string{"--local-queue", `"-5"`}},
		{[]string{"--refetch-delay", "soon"}, []string{"--refetch-delay", `"soon"`}},
		{[]string{"extra"}, []string{`"extra"`}},
		{[]string{"--listen-connection", "postgres://localhost:notaport/db"}, []string{"--listen-connection"}},
	} {
		r := b.cli(t, append([]string{"run", "--once"}, tt.args...)...)
		assertOneLineError(t, r, tt.want...)
	}
}

// The throughput flags reach the worker: with a local queue, a batch delay
// and a durable fetch, run --once still runs every job once.
func TestRunOnceWithThroughputFlags(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.migrate(t)
	tasks, out := t.TempDir(), t.TempDir()
	writeScript(t, tasks, "t.sh", reportScript(out))
	var ids []int64
	for i := 0; i < 5; i++ {
		ids = append(ids, b.add(t, "t").ID)
	}
	r := b.cli(t, "run", "--once", "--tasks", tasks, "-j", "2", "--local-queue", "3", "--refetch-delay", "1ms",
		"--batch-delay", "5ms", "--durable-fetch")
	if r.code != 0 {
		t.Fatalf("run --once: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	for _, id := range ids {
		if b.job(t, id).present {
			t.Errorf("job %d is still in the table", id)
		}
		if env := readEnvFile(t, filepath.Join(out, strconv.FormatInt(id, 10))); env["identifier"] != "t" {
			t.Errorf("job %d ran as %q", id, env["identifier"])
		}
	}
}

func TestRunOnceSummaryAndExitStatus(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.migrate(t)
	tasks := t.TempDir()
	writeScript(t, tasks, "ok.sh", "exit 0\n")
	writeScript(t, tasks, "bad.sh", "echo broken >&2; exit 1\n")
	var okIDs []int64
	for range 2 {
		okIDs = append(okIDs, b.add(t, "ok").ID)
	}
	// One attempt only: its retry must not come due before the second run
	// below, however long the first one takes.
	b.add(t, "bad", "--max-attempts", "1")
	b.add(t, "send_emial")
	b.add(t, "send_emial")
	b.add(t, "other")
	b.add(t, "later", "--run-at", time.Now().Add(time.Hour).UTC().Format(time.RFC3339)) // not runnable: not counted

	r := b.cli(t, "run", "--once", "--tasks", tasks)
	if r.code != exitError {
		t.Errorf("exit %d, want %d when a job failed; stderr:\n%s", r.code, exitError, r.stderr)
	}
	want := "run --once: 2 jobs completed, 1 failed; 3 runnable jobs left for tasks this worker does not have (send_emial: 2, other: 1)\n"
	if r.stdout != want {
		t.Errorf("stdout %q, want %q", r.stdout, want)
	}
	if !strings.HasSuffix(r.stderr, "gworker: 1 job failed (see the log above)\n") {
		t.Errorf("stderr does not end with the failure:\n%s", r.stderr)
	}
	// Each completion is logged at info level with its duration.
	for _, id := range okIDs {
		line := ""
		for _, l := range strings.Split(r.stderr, "\n") {
			if strings.Contains(l, "job completed") && strings.Contains(l, fmt.Sprintf("job_id=%d ", id)) {
				line = l
			}
		}
		if !strings.Contains(line, "level=INFO") || !strings.Contains(line, "task=ok") || !strings.Contains(line, "duration=") {
			t.Errorf("job %d: completion log line %q; want level INFO, its task and its duration\n%s", id, line, r.stderr)
		}
	}

	// Nothing failed: exit 0; --quiet drops the completion lines.
	b.add(t, "ok")
	r = b.cli(t, "run", "--once", "--quiet", "--tasks", tasks)
	if r.code != 0 {
		t.Errorf("exit %d with no failure; stderr:\n%s", r.code, r.stderr)
	}
	if want := "run --once: 1 job completed, 0 failed; 3 runnable jobs left for tasks this worker does not have (send_emial: 2, other: 1)\n"; r.stdout != want {
		t.Errorf("stdout %q, want %q", r.stdout, want)
	}
	if strings.Contains(r.stderr, "job completed") {
		t.Errorf("--quiet still logs completions:\n%s", r.stderr)
	}
}

// --listen-connection, else $DATABASE_LISTEN_URL, is where the worker
// LISTENs, apart from -c: pointed at a port where no server answers, the
// worker warns that its LISTEN fails there.
func TestRunListensOnTheListenConnection(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.migrate(t)
	tasks := t.TempDir()
	writeScript(t, tasks, "t.sh", "exit 0\n")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close() // nothing answers there now
	nowhere := "postgres://postgres@127.0.0.1:" + port + "/postgres?sslmode=disable"
	for _, viaEnv := range []bool{false, true} {
		environment := b.env()
		args := []string{"run", "--tasks", tasks}
		if viaEnv {
			environment[envListenURL] = nowhere
		} else {
			args = append(args, "--listen-connection", nowhere)
		}
		ctx, cancel := context.WithCancel(b.ctx)
		var stderr syncBuffer
		done := make(chan int, 1)
		go func() { done <- run(ctx, args, io.Discard, &stderr, func(k string) string { return environment[k] }) }()
		testkit.Eventually(t, "the warning that LISTEN fails on the listen connection", func() bool {
			s := stderr.String()
			return strings.Contains(s, "listening for notifications (LISTEN) failed") && strings.Contains(s, "127.0.0.1:"+port)
		})
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("run (listen connection from the environment: %v): exit %d, stderr:\n%s", viaEnv, code, stderr.String())
		}
	}
}
