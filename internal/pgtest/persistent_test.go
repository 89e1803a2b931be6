//go:build unix

package pgtest

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// reachableTempDir returns a temporary directory that a server running as
// the user postgres can use when the tests run as root (t.TempDir's
// directories are private to their owner).
func reachableTempDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestPersistentClusterKeepsItsDataAndIsReused(t *testing.T) {
	t.Parallel()
	requireLocalBinaries(t)
	dir := filepath.Join(reachableTempDir(t), "cache", "dev")
	if !ServerCanReach(dir) {
		t.Fatalf("ServerCanReach(%s) = false for a directory made reachable", dir)
	}
	p, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	s, err := StartPersistent(testContext(t, time.Minute), dir, p, Options{Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = StopPersistent(testContext(t, time.Minute), dir) })
	if s.Reused() || s.PID() == 0 || s.Dir() != dir || p != port(t, s.URL()) {
		t.Fatalf("first start: reused %v, pid %d, dir %s, url %s", s.Reused(), s.PID(), s.Dir(), s.URL())
	}
	if _, err := connect(t, s.URL()).Exec(testContext(t, 10*time.Second), "create table kept (n int)"); err != nil {
		t.Fatal(err)
	}

	// Found running: same server, nothing started, whatever port was asked.
	again, err := StartPersistent(testContext(t, time.Minute), dir, p+1, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !again.Reused() || again.URL() != s.URL() || again.PID() != s.PID() {
		t.Fatalf("second start: reused %v, url %s, pid %d; want true, %s, %d", again.Reused(), again.URL(), again.PID(), s.URL(), s.PID())
	}

	// Stopped from "another process": by its files alone.
	stopped, err := StopPersistent(testContext(t, time.Minute), dir)
	if err != nil || !stopped {
		t.Fatalf("StopPersistent = %v, %v; want true, nil", stopped, err)
	}
	if answers(s.URL()) {
		t.Fatal("the server still answers after StopPersistent")
	}
	if stopped, err := StopPersistent(testContext(t, time.Minute), dir); err != nil || stopped {
		t.Errorf("StopPersistent with nothing running = %v, %v; want false, nil", stopped, err)
	}
	_ = s.Stop() // its process is gone; this reaps it

	// Started again: the data is still there.
	s, err = StartPersistent(testContext(t, time.Minute), dir, p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Reused() {
		t.Error("a start after a stop says it reused a server")
	}
	if got := queryString(t, s.URL(), "select to_regclass('kept')::text"); got != "kept" {
		t.Errorf("table kept is gone after a restart (to_regclass = %q)", got)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if answers(s.URL()) {
		t.Fatal("the server still answers after Stop")
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "PG_VERSION")); err != nil {
		t.Errorf("Stop removed the data: %v", err)
	}
}
