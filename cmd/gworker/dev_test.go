//go:build unix

package main

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gworker/gworker/internal/testkit"
)

// devSetup returns a directory for a development server (one that the
// postgres user can reach when the tests run as root: t.TempDir's are
// private) and a free port.
func devSetup(t *testing.T) (dir string, port string) {
	t.Helper()
	if _, err := exec.LookPath("initdb"); err != nil {
		if m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb"); len(m) == 0 {
			t.Fatal("gworker dev needs local PostgreSQL server binaries (initdb, postgres): " +
				"install them (Debian/Ubuntu: apt-get install postgresql; make test does it when run as root)")
		}
	}
	base := t.TempDir()
	for _, d := range []string{filepath.Dir(base), base} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return base, strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// exportedURL returns the URL of the export line gworker dev printed, or "".
func exportedURL(stdout string) string {
	for _, line := range strings.Split(stdout, "\n") {
		if v, ok := strings.CutPrefix(line, "export DATABASE_URL="); ok {
			return strings.Trim(v, "'")
		}
	}
	return ""
}

// answers reports whether a server accepts connections at url.
func answers(url string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return false
	}
	conn.Close(ctx)
	return true
}

func TestDevStartsMigratesIsReusedAndStopsOnInterrupt(t *testing.T) {
	t.Parallel()
	base, port := devSetup(t)
	dir := filepath.Join(base, "dev")
	environment := map[string]string{envDevDir: dir}
	t.Cleanup(func() { runCLI(context.Background(), environment, "dev", "--stop") })

	ctx, interrupt := context.WithCancel(t.Context())
	defer interrupt()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"dev", "--port", port}, &stdout, &stderr, func(k string) string { return environment[k] })
	}()
	// The Ctrl-C hint is written after the export line: wait for both.
	testkit.EventuallyWithin(t, 2*time.Minute, "the export line and the Ctrl-C hint", func() bool {
		return exportedURL(stdout.String()) != "" && strings.Contains(stderr.String(), "Ctrl-C")
	})
	url := exportedURL(stdout.String())
	if !strings.Contains(url, "127.0.0.1:"+port+"/") {
		t.Errorf("URL %q is not on port %s", url, port)
	}
	if !strings.Contains(stderr.String(), "installed (graphile-worker migration 20)") ||
		!strings.Contains(stderr.String(), "data in "+dir) || !strings.Contains(stderr.String(), "Ctrl-C") {
		t.Errorf("stderr does not say what it did:\n%s", stderr.String())
	}

	// The other commands work with the exported URL.
	r := runCLI(t.Context(), map[string]string{envDatabaseURL: url}, "migrate")
	if r.code != 0 || !strings.Contains(r.stdout, "already up to date") {
		t.Errorf("migrate on the dev server: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}

	// A second gworker dev reuses the server, prints the same line and
	// exits at once.
	r = runCLI(t.Context(), environment, "dev", "--port", "1")
	if r.code != 0 || exportedURL(r.stdout) != url || !strings.Contains(r.stderr, "already running") {
		t.Fatalf("second dev: exit %d, stdout %q, stderr %q; want the same URL %s", r.code, r.stdout, r.stderr, url)
	}
	if !answers(url) {
		t.Fatal("the second dev stopped the server it did not start")
	}

	interrupt()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("dev exited %d after Ctrl-C; stderr:\n%s", code, stderr.String())
		}
	case <-time.After(time.Minute):
		t.Fatal("dev did not return within a minute of Ctrl-C")
	}
	if answers(url) {
		t.Error("the server still answers after Ctrl-C")
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "PG_VERSION")); err != nil {
		t.Errorf("the data did not stay: %v", err)
	}
}

func TestDevDetachThenStop(t *testing.T) {
	t.Parallel()
	base, port := devSetup(t)
	environment := map[string]string{envDevDir: filepath.Join(base, "dev")}
	t.Cleanup(func() { runCLI(context.Background(), environment, "dev", "--stop") })

	r := runCLI(t.Context(), environment, "dev", "--detach", "--port", port)
	url := exportedURL(r.stdout)
	if r.code != 0 || url == "" || strings.Count(r.stdout, "\n") != 1 {
		t.Fatalf("dev --detach: exit %d, stdout %q (want only the export line), stderr %q", r.code, r.stdout, r.stderr)
	}
	if !answers(url) {
		t.Fatal("the server does not answer after dev --detach returned")
	}
	r = runCLI(t.Context(), environment, "dev", "--stop")
	if r.code != 0 || !strings.Contains(r.stderr, "stopped the development server") {
		t.Fatalf("dev --stop: exit %d, stderr %q", r.code, r.stderr)
	}
	if answers(url) {
		t.Fatal("the server still answers after dev --stop")
	}
	r = runCLI(t.Context(), environment, "dev", "--stop")
	if r.code != 0 || !strings.Contains(r.stderr, "no development server is running") {
		t.Errorf("dev --stop with nothing running: exit %d, stderr %q", r.code, r.stderr)
	}
}

// A gworker dev that was killed leaves its server running; dev --stop
// stops it. The data lives under the user's cache directory.
func TestDevStopsTheServerOfAKilledDev(t *testing.T) {
	t.Parallel()
	cache, port := devSetup(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr syncBuffer
	dev := exec.Command(self, "dev", "--port", port)
	dev.Env = append(os.Environ(), envRunAsCommand+"=1", "XDG_CACHE_HOME="+cache, envDevDir+"=")
	dev.Stdout, dev.Stderr = &stdout, &stderr
	if err := dev.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = dev.Wait(); close(exited) }()
	dir := filepath.Join(cache, "gworker", "dev")
	environment := map[string]string{envDevDir: dir}
	t.Cleanup(func() {
		_ = dev.Process.Kill()
		<-exited
		runCLI(context.Background(), environment, "dev", "--stop")
	})

	// Standard output and error reach the buffers through separate pipes,
	// so wait for the last line of each before reading them.
	testkit.EventuallyWithin(t, 2*time.Minute, "the export line and the Ctrl-C hint", func() bool {
		return exportedURL(stdout.String()) != "" && strings.Contains(stderr.String(), "press Ctrl-C")
	})
	url := exportedURL(stdout.String())
	if !strings.Contains(stderr.String(), "data in "+dir) {
		t.Errorf("the data is not in the cache directory %s:\n%s", dir, stderr.String())
	}
	if err := dev.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-exited
	if !answers(url) {
		t.Fatal("the server died with its gworker dev; it was expected to stay")
	}

	r := runCLI(t.Context(), environment, "dev", "--stop")
	if r.code != 0 || !strings.Contains(r.stderr, "stopped the development server") {
		t.Fatalf("dev --stop: exit %d, stderr %q", r.code, r.stderr)
	}
	if answers(url) {
		t.Fatal("the server still answers after dev --stop")
	}
}
