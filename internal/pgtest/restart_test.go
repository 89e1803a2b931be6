//go:build unix

package pgtest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestShutdownAndRestartKeepTheURLAndTheData(t *testing.T) {
	t.Parallel()
	requireLocalBinaries(t)
	s, err := StartLocal(testContext(t, time.Minute), Options{Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	if s.Source() != SourceLocal {
		t.Fatalf("StartLocal gave a %s server", s.Source())
	}
	url := s.URL()

	// Committed durably (synchronous_commit on for this session), so that
	// even an immediate shutdown keeps it.
	conn := connect(t, url)
	for _, sql := range []string{
		"set synchronous_commit = on",
		"create table kept (n int)",
		"insert into kept values (1)",
	} {
		if _, err := conn.Exec(testContext(t, 10*time.Second), sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}

	for _, mode := range []ShutdownMode{ShutdownFast, ShutdownImmediate} {
		begin := time.Now()
		if err := s.Shutdown(mode); err != nil {
			t.Fatalf("Shutdown(%s): %v", mode, err)
		}
		t.Logf("shutdown %s took %v", mode, time.Since(begin).Round(time.Millisecond))
		if answers(url) {
			t.Fatalf("the server still answers after Shutdown(%s)", mode)
		}
		// The open connection saw its server go.
		if err := conn.Ping(testContext(t, 5*time.Second)); err == nil {
			t.Errorf("a connection from before Shutdown(%s) still works", mode)
		}
		if err := s.Shutdown(mode); err != nil {
			t.Errorf("a second Shutdown(%s): %v", mode, err)
		}

		begin = time.Now()
		if err := s.Restart(testContext(t, time.Minute)); err != nil {
			t.Fatalf("Restart after Shutdown(%s): %v", mode, err)
		}
		t.Logf("restart after %s shutdown took %v", mode, time.Since(begin).Round(time.Millisecond))
		if s.URL() != url {
			t.Fatalf("URL changed from %s to %s", url, s.URL())
		}
		conn = connect(t, url)
		if got := queryString(t, url, "select string_agg(n::text, ',') from kept"); got != "1" {
			t.Errorf("after Shutdown(%s) and Restart the table holds %q, want 1", mode, got)
		}
	}

	// Restart of a running server stops it first, as pg_ctl restart does.
	if err := s.Restart(testContext(t, time.Minute)); err != nil {
		t.Fatalf("Restart of a running server: %v", err)
	}
	selectOne(t, url)

	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if !gone(s.Dir()) {
		t.Errorf("%s still exists after Stop", s.Dir())
	}
	for name, err := range map[string]error{
		"Shutdown": s.Shutdown(ShutdownFast),
		"Restart":  s.Restart(testContext(t, 10*time.Second)),
	} {
		if !errors.Is(err, errRemoved) {
			t.Errorf("%s after Stop = %v, want errRemoved", name, err)
		}
	}
	if answers(url) {
		t.Error("the server answers after Stop, Shutdown and Restart")
	}
}

func TestShutdownNeedsALocalCluster(t *testing.T) {
	t.Parallel()
	s := &Server{source: SourceEnv, url: "postgres://db.invalid/x"}
	for name, err := range map[string]error{
		"Shutdown": s.Shutdown(ShutdownImmediate),
		"Restart":  s.Restart(context.Background()),
	} {
		if err == nil || !strings.Contains(err.Error(), "StartLocal") || !strings.Contains(err.Error(), string(SourceEnv)) {
			t.Errorf("%s of an env server = %v, want an error naming the source and StartLocal", name, err)
		}
	}
}

func TestShutdownRejectsUnknownModes(t *testing.T) {
	t.Parallel()
	c := &cluster{}
	if err := c.shutdown("smart"); err == nil || !strings.Contains(err.Error(), "fast") {
		t.Errorf("shutdown(smart) = %v, want an error listing the modes", err)
	}
}
