package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gworker/gworker/core"
)

const (
	// defaultKillDelay is how long a task's process group has between
	// SIGTERM and SIGKILL.
	defaultKillDelay = 5 * time.Second
	// stderrTailBytes is how much of the end of a failed task's standard
	// error becomes the job's last_error.
	stderrTailBytes = 2048
	// maxLogLine is the longest piece of task output logged as one line.
	maxLogLine = 8 << 10
)

// execTask is an executable file serving as a task.
type execTask struct {
	identifier string
	path       string // absolute
}

// loadExecTasks finds the executable regular files under dir, recursively
// (following symbolic links to files, not to directories). A file's
// identifier is its path relative to dir without its extension, with /
// separators.
func loadExecTasks(dir string, log *slog.Logger) ([]execTask, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("tasks directory %q: %w", dir, err)
	}
	info, err := os.Stat(abs)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("tasks directory %q does not exist (set it with --tasks)", dir)
	case err != nil:
		return nil, fmt.Errorf("tasks directory %q: %w", dir, err)
	case !info.IsDir():
		return nil, fmt.Errorf("tasks directory %q is not a directory", dir)
	}
	var tasks []execTask
	files := map[string]string{} // identifier -> relative path
	err = filepath.WalkDir(abs, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(abs, p)
		if err != nil {
			return err
		}
		info, err := os.Stat(p) // follows a symbolic link
		switch {
		case err != nil:
			log.Debug("gworker: ignoring unreadable file in tasks directory", slog.String("file", rel), slog.Any("error", err))
			return nil
		case !info.Mode().IsRegular():
			log.Debug("gworker: ignoring non-regular file in tasks directory", slog.String("file", rel))
			return nil
		case info.Mode().Perm()&0o111 == 0:
			log.Debug("gworker: ignoring non-executable file in tasks directory", slog.String("file", rel))
			return nil
		}
		id := taskIdentifier(rel)
		if utf8.RuneCountInString(id) > core.MaxIdentifierLength {
			return fmt.Errorf("task file %q: identifier %q is longer than %d characters", rel, id, core.MaxIdentifierLength)
		}
		if other, dup := files[id]; dup {
			return fmt.Errorf("task files %q and %q both have the identifier %q; rename one", other, rel, id)
		}
		files[id] = rel
		tasks = append(tasks, execTask{identifier: id, path: p})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load tasks from %q: %w", dir, err)
	}
	if len(tasks) == 0 {
		return nil, fmt.Errorf("no tasks in %q: a task is an executable file (chmod +x) whose path, without extension, is its identifier", dir)
	}
	slices.SortFunc(tasks, func(a, b execTask) int { return strings.Compare(a.identifier, b.identifier) })
	ids := make([]string, len(tasks))
	for i, t := range tasks {
		ids[i] = t.identifier
	}
	log.Info("gworker: loaded executable tasks", slog.String("dir", dir), slog.Any("tasks", ids))
	return tasks, nil
}

// taskIdentifier maps a path relative to the tasks directory to its
// identifier: a/b/c.sh is a/b/c. Only the last extension goes, and a name
// that is all extension (.env) keeps it.
func taskIdentifier(rel string) string {
	dir, base := path.Split(filepath.ToSlash(rel))
	if ext := path.Ext(base); ext != "" && ext != base {
		base = strings.TrimSuffix(base, ext)
	}
	return dir + base
}

// execRunner runs jobs by executing task files.
type execRunner struct {
	environ   func() []string // inherited by every task
	killDelay time.Duration   // between SIGTERM and SIGKILL

	mu      sync.Mutex
	closed  bool
	running sync.WaitGroup
}

// errRunnerClosed fails a job that a shutting-down worker started anyway.
var errRunnerClosed = errors.New("task not started: the worker is shutting down")

func (r *execRunner) handler(t execTask) func(context.Context, *core.Job) error {
	return func(ctx context.Context, job *core.Job) error { return r.run(ctx, t, job) }
}

// wait stops new tasks from starting and waits for the running ones, which
// ends within killDelay of their cancellation.
func (r *execRunner) wait() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.running.Wait()
}

// run executes t for job. A cancelled ctx sends SIGTERM to the task's
// process group, and SIGKILL killDelay later. On Linux the group is also
// killed when the worker dies (see taskCommand).
func (r *execRunner) run(ctx context.Context, t execTask, job *core.Job) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return errRunnerClosed
	}
	r.running.Add(1)
	r.mu.Unlock()
	defer r.running.Done()

	log := core.LoggerFromContext(ctx)
	payload := job.Payload
	if len(payload) == 0 {
		payload = []byte("null")
	}
	stdin := make([]byte, 0, len(payload)+13)
	stdin = append(append(append(stdin, `{"payload":`...), payload...), '}')

	stdout := &lineLogger{log: log, msg: "task stdout"}
	stderr := &lineLogger{log: log, msg: "task stderr"}
	tail := &tailBuffer{max: stderrTailBytes}
	cmd := taskCommand(ctx, t.path, slices.Concat(r.environ(), jobEnv(t, job)))
	cmd.Stdin = bytes.NewReader(stdin)
	cmd.Stdout = stdout
	cmd.Stderr = io.MultiWriter(stderr, tail)
	var signalled atomic.Bool
	cmd.Cancel = func() error {
		signalled.Store(true)
		log.Warn("gworker: worker is shutting down; sending SIGTERM to the task", slog.Int("pid", cmd.Process.Pid),
			slog.Duration("sigkill_after", r.killDelay))
		return terminateGroup(cmd.Process)
	}
	cmd.WaitDelay = r.killDelay
	log.Debug("gworker: starting task", slog.String("file", t.path))
	// The parent-death signal that ties the task to the worker (see
	// taskCommand) fires when the thread that started the task ends, and Go
	// ends a thread only when a goroutine locked to it exits. Stay on this
	// thread until the task is reaped, so that no other goroutine can lock
	// it and take it down while the task runs.
	runtime.LockOSThread()
	err := cmd.Run()
	runtime.UnlockOSThread()
	stdout.flush()
	stderr.flush()

	if signalled.Load() {
		killGroup(cmd.Process) // whatever of its group is left
		return fmt.Errorf("task interrupted by worker shutdown (%s)", exitMessage(cmd.ProcessState, err, tail.String()))
	}
	ps := cmd.ProcessState
	if ps == nil {
		return fmt.Errorf("cannot start task %s: %w", t.path, err)
	}
	if !ps.Success() {
		return errors.New(exitMessage(ps, err, tail.String()))
	}
	if errors.Is(err, exec.ErrWaitDelay) {
		log.Warn("gworker: task exited but a process it started kept its output open; stopped reading it",
			slog.Duration("after", r.killDelay))
	}
	return nil
}

// exitMessage describes how a task ended, followed by the end of its
// standard error.
func exitMessage(ps *os.ProcessState, err error, stderrTail string) string {
	var msg string
	switch {
	case ps == nil:
		msg = fmt.Sprintf("task did not run: %v", err)
	case ps.ExitCode() >= 0:
		msg = fmt.Sprintf("task exited with status %d", ps.ExitCode())
	default:
		msg = fmt.Sprintf("task was killed (%s)", ps.String())
	}
	if stderrTail != "" {
		msg += ": " + stderrTail
	}
	return msg
}

// jobEnv is graphile-worker's environment for executable tasks.
func jobEnv(t execTask, job *core.Job) []string {
	return []string{
		"GRAPHILE_WORKER_PAYLOAD_FORMAT=json",
		"GRAPHILE_WORKER_TASK_IDENTIFIER=" + t.identifier,
		"GRAPHILE_WORKER_JOB_ID=" + strconv.FormatInt(job.ID, 10),
		"GRAPHILE_WORKER_JOB_KEY=" + job.Key,
		"GRAPHILE_WORKER_JOB_ATTEMPTS=" + strconv.Itoa(job.Attempts),
		"GRAPHILE_WORKER_JOB_MAX_ATTEMPTS=" + strconv.Itoa(job.MaxAttempts),
		"GRAPHILE_WORKER_JOB_PRIORITY=" + strconv.Itoa(job.Priority),
		// UTC with milliseconds, like JavaScript's toISOString.
		"GRAPHILE_WORKER_JOB_RUN_AT=" + job.RunAt.UTC().Format("2006-01-02T15:04:05.000Z07:00"),
	}
}

// lineLogger logs what a task writes, one record per line. Lines longer
// than maxLogLine are split.
type lineLogger struct {
	log *slog.Logger
	msg string
	buf []byte
}

func (l *lineLogger) Write(p []byte) (int, error) {
	l.buf = append(l.buf, p...)
	rest := l.buf
	for {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			break
		}
		l.emit(rest[:i])
		rest = rest[i+1:]
	}
	for len(rest) >= maxLogLine {
		l.emit(rest[:maxLogLine])
		rest = rest[maxLogLine:]
	}
	l.buf = l.buf[:copy(l.buf, rest)]
	return len(p), nil
}

// flush logs an unterminated last line.
func (l *lineLogger) flush() {
	if len(l.buf) > 0 {
		l.emit(l.buf)
		l.buf = l.buf[:0]
	}
}

func (l *lineLogger) emit(line []byte) {
	l.log.Info(l.msg, slog.String("line", string(bytes.TrimSuffix(line, []byte("\r")))))
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max       int
	buf       []byte
	truncated bool
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	n := len(p)
	if len(p) >= t.max {
		t.truncated = t.truncated || len(p) > t.max || len(t.buf) > 0
		t.buf = append(t.buf[:0], p[len(p)-t.max:]...)
		return n, nil
	}
	t.buf = append(t.buf, p...)
	if drop := len(t.buf) - t.max; drop > 0 {
		t.buf = t.buf[:copy(t.buf, t.buf[drop:])]
		t.truncated = true
	}
	return n, nil
}

// String returns the kept text, trimmed, as valid UTF-8 without NUL bytes
// (PostgreSQL text cannot hold them), starting with "…" if the start was
// cut off.
func (t *tailBuffer) String() string {
	b := t.buf
	if t.truncated {
		for len(b) > 0 && !utf8.RuneStart(b[0]) {
			b = b[1:]
		}
	}
	s := strings.ReplaceAll(strings.ToValidUTF8(string(b), "\uFFFD"), "\x00", "")
	s = strings.TrimSpace(s)
	if t.truncated && s != "" {
		s = "…" + s
	}
	return s
}
