package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/internal/testkit"
)

func TestCancelledTaskIgnoringSIGTERMIsKilledWithItsChildren(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "child.pid")
	path := writeScript(t, dir, "stubborn.sh", fmt.Sprintf(`trap '' TERM
sleep 300 &
echo $! > %[1]q.tmp && mv %[1]q.tmp %[1]q
while :; do sleep 0.05; done
`, pidFile))
	r := &execRunner{environ: os.Environ, killDelay: 200 * time.Millisecond}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	job := &core.Job{ID: 1, TaskIdentifier: "stubborn", Payload: json.RawMessage(`{}`), RunAt: time.Now(), Attempts: 1, MaxAttempts: 25}
	errc := make(chan error, 1)
	go func() { errc <- r.run(ctx, execTask{identifier: "stubborn", path: path}, job) }()

	var child int
	testkit.EventuallyWithin(t, time.Minute, "the task to start its child", func() bool {
		b, err := os.ReadFile(pidFile)
		if err != nil {
			return false
		}
		child, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil
	})
	cancel()
	select {
	case err := <-errc:
		if err == nil || !strings.Contains(err.Error(), "interrupted by worker shutdown") {
			t.Errorf("run returned %v, want an interruption error", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the task was not stopped within a minute of cancellation")
	}
	testkit.EventuallyWithin(t, time.Minute, "the task's child to be killed", func() bool { return processGone(child) })
	r.wait()
}

// processGone reports whether pid has exited (it may be a zombie waiting
// for its reaper).
func processGone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && len(s) > i+2 && s[i+2] == 'Z'
}

func TestWorkerKilledOutrightTakesItsTasksAndTheirChildrenDown(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.migrate(t)
	tasks, out := t.TempDir(), t.TempDir()
	pidFile := filepath.Join(out, "pids")
	writeScript(t, tasks, "hold.sh", fmt.Sprintf(`sleep 300 &
echo "$$ $!" > %[1]q.tmp && mv %[1]q.tmp %[1]q
wait
`, pidFile))
	b.add(t, "hold")

	// The worker runs in a process of its own (this test binary acting as
	// gworker, see TestMain), so that it alone can be killed.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	worker := exec.Command(self, "run", "--tasks", tasks)
	worker.Env = append(os.Environ(), envRunAsCommand+"=1", envDatabaseURL+"="+b.url, envSchema+"="+b.schema)
	worker.Dir = t.TempDir() // no ./crontab
	worker.Stdout, worker.Stderr = &logs, &logs
	if err := worker.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { worker.Wait(); close(exited) }()
	t.Cleanup(func() {
		worker.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("worker output:\n%s", logs.String())
		}
	})

	var task, child int
	testkit.EventuallyWithin(t, time.Minute, "the task to start its child", func() bool {
		select {
		case <-exited:
			t.Fatal("the worker exited before running the task")
		default:
		}
		b, err := os.ReadFile(pidFile)
		if err != nil {
			return false
		}
		_, err = fmt.Sscan(string(b), &task, &child)
		return err == nil
	})
	t.Cleanup(func() {
		// Without the fix these outlive the test.
		for _, pid := range []int{task, child} {
			if !processGone(pid) {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	if processGone(task) || processGone(child) {
		t.Fatalf("task %d or its child %d already gone before the worker was killed", task, child)
	}

	if err := worker.Process.Signal(syscall.SIGKILL); err != nil { // the worker's process only, not a group
		t.Fatal(err)
	}
	<-exited
	testkit.EventuallyWithin(t, time.Minute, "the task and its child to die with the worker", func() bool {
		return processGone(task) && processGone(child)
	})
}

func TestCancelledTaskGetsSIGTERMAndItsOwnExitIsReported(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	readyFile := filepath.Join(dir, "ready")
	path := writeScript(t, dir, "graceful.sh", fmt.Sprintf(`trap 'echo "cleaning up after SIGTERM" >&2; exit 3' TERM
touch %q
while :; do sleep 0.05; done
`, readyFile))
	// A long kill delay: only the task's own handling of SIGTERM can end it
	// within the test.
	r := &execRunner{environ: os.Environ, killDelay: 10 * time.Minute}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	job := &core.Job{ID: 1, TaskIdentifier: "graceful", Payload: json.RawMessage(`{}`), RunAt: time.Now(), Attempts: 1, MaxAttempts: 25}
	errc := make(chan error, 1)
	go func() { errc <- r.run(ctx, execTask{identifier: "graceful", path: path}, job) }()

	testkit.EventuallyWithin(t, time.Minute, "the task to be ready", func() bool {
		_, err := os.Stat(readyFile)
		return err == nil
	})
	cancel()
	select {
	case err := <-errc:
		// The shell may report its sleep's death by SIGTERM first.
		want := "task interrupted by worker shutdown (task exited with status 3: "
		if err == nil || !strings.HasPrefix(err.Error(), want) || !strings.HasSuffix(err.Error(), "cleaning up after SIGTERM)") {
			t.Errorf("run returned %v, want %q... ending with the task's own message", err, want)
		}
	case <-time.After(time.Minute):
		t.Fatal("the task did not end on SIGTERM")
	}
	r.wait()
}

func TestTaskExitStatusSignalAndStderrReachTheWorker(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		file string // the task file's content
		want string // how run's error starts; empty for success
	}{
		"success":     {"#!/bin/sh\necho fine\n", ""},
		"exit status": {"#!/bin/sh\necho 'out of cheese' >&2\nexit 7\n", "task exited with status 7: out of cheese"},
		"signal":      {"#!/bin/sh\necho 'going down' >&2\nkill -s USR1 $$\nsleep 60\n", "task was killed (signal: user defined signal 1): going down"},
		// The supervisor catches SIGTERM (the worker's death brings it), and
		// still dies by it when the task does.
		"SIGTERM":             {"#!/bin/sh\nkill -s TERM $$\nsleep 60\n", "task was killed (signal: terminated)"},
		"missing interpreter": {"#!/nonexistent/interpreter\n", "task exited with status 127: gworker: cannot start task: "},
		"not a program":       {"\x7fELF but not really\n", "task exited with status 126: gworker: cannot start task: "},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "task")
			if err := os.WriteFile(path, []byte(tc.file), 0o755); err != nil {
				t.Fatal(err)
			}
			r := &execRunner{environ: os.Environ, killDelay: time.Minute}
			job := &core.Job{ID: 1, TaskIdentifier: "task", Payload: json.RawMessage(`{}`), RunAt: time.Now(), Attempts: 1, MaxAttempts: 25}
			err := r.run(t.Context(), execTask{identifier: "task", path: path}, job)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("run returned %v, want success", err)
			case tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want)):
				t.Errorf("run returned %v, want %q...", err, tc.want)
			}
		})
	}
}

func TestTaskDoesNotSeeTheSupervisorVariable(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	envFile := filepath.Join(dir, "env")
	path := writeScript(t, dir, "env.sh", fmt.Sprintf("env > %q\n", envFile))
	r := &execRunner{environ: os.Environ, killDelay: time.Minute}
	job := &core.Job{ID: 1, TaskIdentifier: "env", Payload: json.RawMessage(`{}`), RunAt: time.Now(), Attempts: 1, MaxAttempts: 25}
	if err := r.run(t.Context(), execTask{identifier: "env", path: path}, job); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(envFile)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), supervisorEnv+"=") {
		t.Errorf("the task sees %s; a gworker command it runs would act as a supervisor", supervisorEnv)
	}
	if !strings.Contains(string(b), "GRAPHILE_WORKER_JOB_ID=1\n") {
		t.Errorf("the task's environment lacks the job's variables:\n%s", b)
	}
}
