//go:build !unix

package main

import (
	"os"
	"os/exec"
)

// Without process groups, shutdown reaches the task's own process only.

func setProcessGroup(*exec.Cmd) {}

func terminateGroup(p *os.Process) error { return p.Kill() }

func killGroup(p *os.Process) {
	if p != nil {
		_ = p.Kill()
	}
}
