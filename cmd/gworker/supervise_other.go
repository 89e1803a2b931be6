//go:build !linux

package main

import (
	"context"
	"os/exec"
)

// Elsewhere than on Linux there is no parent-death signal: a task runs
// directly, in a process group of its own, and outlives a worker killed
// outright.

// taskCommand returns the command that runs the task file path with the
// environment env.
func taskCommand(ctx context.Context, path string, env []string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, path)
	cmd.Env = env
	setProcessGroup(cmd)
	return cmd
}

// superviseIfAsked does nothing: only Linux runs tasks under a supervisor.
func superviseIfAsked() {}
