package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gworker/gworker/core"
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
	waitFor(t, "the task to start its child", time.Minute, func() bool {
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
	waitFor(t, "the task's child to be killed", time.Minute, func() bool { return processGone(child) })
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
