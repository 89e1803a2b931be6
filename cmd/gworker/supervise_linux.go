//go:build linux

package main

// On Linux every task runs under a supervisor: this program again, started
// by the worker as the leader of the task's process group. The supervisor
// exists so that a worker killed outright (SIGKILL, the OOM killer, a crash)
// takes its tasks down with it; otherwise they keep running, and once
// recovery hands their jobs back to the queue a second copy of each job
// starts beside them.
//
// The kernel's parent-death signal does that for one process only, the
// direct child, so the direct child is the supervisor. It gets SIGTERM when
// the worker dies, and answers by sending SIGKILL to its whole process
// group: the task and everything the task started that stayed in the group.
// A subreaper would not help (it inherits orphans, it is not told that its
// parent died) and a cgroup or a PID namespace needs privileges a worker
// usually lacks.
//
// Apart from that the supervisor is transparent: the task inherits its
// standard input, output and error, its environment (less the variable that
// selects the supervisor) and its working directory, and the supervisor ends
// the way the task did, with the same exit status or killed by the same
// signal. A signal sent to the group by the worker (SIGTERM on shutdown)
// reaches the task, and the supervisor ignores it.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"syscall"
	"time"
	"unsafe"
)

// supervisorEnv, set to the worker's process id, makes this program a task
// supervisor. It is an environment variable rather than a subcommand so
// that no user runs it by accident, and so that main can act on it before
// parsing any argument.
const supervisorEnv = "GWORKER_TASK_SUPERVISOR"

// taskCommand returns the command that runs the task file path with the
// environment env: this program, as the task's supervisor.
func taskCommand(ctx context.Context, path string, env []string) *exec.Cmd {
	// /proc/self/exe rather than os.Executable: it still runs this very
	// program after its file was replaced or removed by an upgrade.
	cmd := exec.CommandContext(ctx, "/proc/self/exe", path)
	cmd.Args[0] = "gworker-task-supervisor" // what ps shows
	cmd.Env = append(env, supervisorEnv+"="+strconv.Itoa(os.Getpid()))
	setProcessGroup(cmd)
	// SIGTERM because the supervisor must catch it to kill its group. The
	// signal is sent when the thread that started the supervisor ends, not
	// the process (go.dev/issue/27505): execRunner.run holds that thread
	// until the supervisor is reaped, and the supervisor checks that its
	// parent really changed.
	cmd.SysProcAttr.Pdeathsig = syscall.SIGTERM
	return cmd
}

// superviseIfAsked runs this process as a task supervisor, and exits, when
// the worker started it as one. main calls it before anything else.
func superviseIfAsked() {
	worker, ok := os.LookupEnv(supervisorEnv)
	if !ok {
		return
	}
	os.Exit(supervise(worker, os.Args[1:]))
}

// supervise runs the task file args[0] as described at the top of this
// file, and returns the exit status to end with.
func supervise(worker string, args []string) int {
	// Catch, from the start, the signals that the worker's death or the
	// worker stopping the task bring, so that none of them ends this process
	// by default. Caught, not ignored: the task then starts with them at
	// their defaults, as it would without a supervisor.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT)

	ppid, err := strconv.Atoi(worker)
	if err != nil || len(args) != 1 || syscall.Getpgrp() != os.Getpid() {
		// Killing "its" group would kill someone else's.
		fmt.Fprintln(os.Stderr, "gworker: the task supervisor runs only under \"gworker run\"")
		return 2
	}
	orphaned := func() bool { return os.Getppid() != ppid }
	if orphaned() {
		// The worker died before the signal was caught. (If it died before
		// the parent-death signal was even set, the runtime's fork sent it
		// anyway, and this process ended by default.)
		return 1
	}
	if err := os.Unsetenv(supervisorEnv); err != nil {
		fmt.Fprintf(os.Stderr, "gworker: task supervisor: %v\n", err)
		return 2
	}

	cmd := exec.Command(args[0])
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	// Should this process be killed alone, the task goes with it (its own
	// children stay in the group for whoever killed it). As in the worker,
	// the signal follows the thread that starts the task: keep it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	runtime.LockOSThread()
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "gworker: cannot start task: %v\n", err)
		if errors.Is(err, fs.ErrNotExist) {
			return 127 // as a shell reports a command not found
		}
		return 126 // as a shell reports a command found but not runnable
	}
	go func() {
		for range sigs {
			if orphaned() {
				// The worker died. Kill the group, this process included,
				// before recovery gives the job to another worker.
				_ = syscall.Kill(0, syscall.SIGKILL)
			}
			// Otherwise the worker signalled the whole group to stop the
			// task; the task got the signal too and handles it.
		}
	}()
	_ = cmd.Wait() // the status is in cmd.ProcessState
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		dieBy(ws.Signal())
		return 128 + int(ws.Signal())
	}
	return cmd.ProcessState.ExitCode()
}

// dieBy ends this process with the signal sig, so that the worker sees the
// task's death by that signal. The Go runtime handles most signals itself,
// and os/signal can give back only its handling, not the system's default,
// so the default is set directly.
func dieBy(sig syscall.Signal) {
	// The task dumped its core if it was to; a core of this process would
	// be of no use, and might overwrite the task's.
	_ = syscall.Setrlimit(syscall.RLIMIT_CORE, &syscall.Rlimit{})
	// A kernel struct sigaction of zeros is SIG_DFL with no flags and an
	// empty mask on every architecture. The last argument is the size of
	// the kernel's signal set: 8 bytes, or 16 on MIPS.
	var act [64]byte
	for _, setSize := range []uintptr{8, 16} {
		_, _, errno := syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(&act)), 0, setSize, 0, 0)
		if errno != syscall.EINVAL {
			break
		}
	}
	_ = syscall.Kill(os.Getpid(), sig)
	// Delivery may take a moment if another thread takes the signal. Should
	// it not end the process, the caller exits as a shell would report it.
	time.Sleep(time.Second)
}
