package main

import (
	"context"
	"os"
)

func main() {
	// Before anything else: the worker may have started this process to
	// supervise a task (Linux only; see supervise_linux.go).
	superviseIfAsked()
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}
