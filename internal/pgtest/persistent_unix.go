//go:build unix

package pgtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// StartPersistent starts the cluster kept in dir, creating it on first use,
// or finds it already running: a development database whose data outlives
// the process, unlike Start's throwaway clusters.
//
// dir holds the data directory (dir/data, made by initdb when absent), the
// server's log (dir/postgres.log, appended to) and its socket directory.
// When dir/data/postmaster.pid names a live server that answers, nothing is
// started and the returned Server's Reused is true; its URL has the port
// that server listens on. Otherwise postgres starts on port, listening on
// 127.0.0.1 only with trust authentication for the superuser postgres (so
// for development only), with PostgreSQL's own settings (durable, unlike
// the test clusters') plus opts.Settings. As with Start, the server runs
// as the "postgres" OS user when this process is root; every parent of dir
// must then be searchable by others (see ServerCanReach).
//
// Nothing ties the server to this process: no watchdog, and it keeps
// running when the process exits or is killed. Server.Stop stops it (a
// fast shutdown) and keeps dir; StopPersistent stops it from any process.
// Without local binaries the error wraps ErrNoServerBinaries.
func StartPersistent(ctx context.Context, dir string, port int, opts Options) (*Server, error) {
	settings, err := settingsOver(nil, opts.Settings)
	if err != nil {
		return nil, err
	}
	if port <= 0 || port > 65535 {
		return nil, fmt.Errorf("pgtest: port %d is not a TCP port", port)
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultStartTimeout)
		defer cancel()
	}
	c := &cluster{
		opts:     opts,
		settings: settings,
		dir:      dir,
		dataDir:  filepath.Join(dir, "data"),
		sockDir:  filepath.Join(dir, "sock"),
		logPath:  filepath.Join(dir, "postgres.log"),
		durable:  true,
	}

	if s, err := c.running(ctx); s != nil || err != nil {
		return s, err
	}

	c.bins, err = findBinaries(ctx)
	if err != nil {
		return nil, err
	}
	c.cred, err = serverCredential(os.Geteuid(), user.Lookup)
	if err != nil {
		return nil, err
	}
	if err := c.prepareDir(); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(c.dataDir, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		// A failed initdb leaves a partial data directory that the next
		// initdb refuses; it holds nothing yet, so it can go.
		if err := c.initdb(ctx); err != nil {
			_ = os.RemoveAll(c.dataDir)
			return nil, err
		}
	}
	if err := c.launchOn(ctx, port, os.O_APPEND); err != nil {
		if errors.Is(err, ErrPortInUse) {
			return nil, fmt.Errorf("pgtest: port %d is in use by another program: %w", port, ErrPortInUse)
		}
		return nil, err
	}
	opts.logf("pgtest: PostgreSQL %s from %s ready on 127.0.0.1:%d (directory %s)",
		c.serverVersion(ctx), filepath.Dir(c.bins.postgres), c.port, dir)
	return &Server{
		source: SourceLocal,
		url:    c.url(),
		dir:    dir,
		pid:    c.pm.Process.Pid,
		stop: func() error {
			c.mu.Lock()
			defer c.mu.Unlock()
			return c.stopPostmaster()
		},
	}, nil
}

// running returns the server already running on c's data directory, or nil
// when there is none. A postmaster still starting is waited for.
func (c *cluster) running(ctx context.Context) (*Server, error) {
	pid, port, ok := readPostmasterPID(c.dataDir)
	if !ok || !processAlive(pid) {
		return nil, nil // none, or one that died; postgres clears a stale file itself
	}
	c.port = port
	ticker := time.NewTicker(20 * time.Millisecond)
	defer ticker.Stop()
	for {
		err := c.probe(ctx)
		if err == nil {
			break
		}
		if !processAlive(pid) {
			return nil, nil // it was shutting down
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("pgtest: a postgres (pid %d) runs on %s but does not answer on port %d: %v; stop it (kill -INT %d) and try again",
				pid, c.dataDir, port, err, pid)
		case <-ticker.C:
		}
	}
	dir := c.dir
	return &Server{
		source: SourceLocal,
		url:    c.url(),
		dir:    dir,
		pid:    pid,
		reused: true,
		stop: func() error {
			_, err := StopPersistent(context.Background(), dir)
			return err
		},
	}, nil
}

// prepareDir creates the cluster directory and its socket directory, owned
// by the user the server runs as.
func (c *cluster) prepareDir() error {
	parent := filepath.Dir(c.dir)
	// Parents readable by others: as root, the server's user must pass
	// through them.
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("pgtest: create %s: %w", parent, err)
	}
	if c.cred != nil && !searchableByOthers(parent) {
		return fmt.Errorf("pgtest: running as root, PostgreSQL runs as the user postgres, which cannot reach %s "+
			"(a parent directory is not searchable by others): use a directory it can reach", c.dir)
	}
	for _, d := range []string{c.dir, c.sockDir} {
		if err := os.Mkdir(d, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("pgtest: %w", err)
		}
		if c.cred != nil {
			if err := os.Chown(d, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
				return fmt.Errorf("pgtest: hand %s to user postgres: %w", d, err)
			}
		}
	}
	return nil
}

// ServerCanReach reports whether StartPersistent can keep a cluster in dir
// as far as permissions go: always when the server runs as this process's
// user; when this process is root the server runs as the user postgres,
// which must be able to search every existing parent of dir.
func ServerCanReach(dir string) bool {
	if os.Geteuid() != 0 {
		return true
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return false
	}
	// Parents not there yet are created searchable (prepareDir).
	for {
		parent := filepath.Dir(dir)
		if _, err := os.Stat(parent); err == nil || parent == dir {
			return searchableByOthers(parent)
		}
		dir = parent
	}
}

// StopPersistent stops the server running on the cluster kept in dir (see
// StartPersistent), from any process: a fast shutdown, escalating to an
// immediate one and then SIGKILL if it lingers, as Server.Stop does. It
// returns once the server is gone, false when none was running. The data
// stays.
func StopPersistent(ctx context.Context, dir string) (stopped bool, err error) {
	dataDir := filepath.Join(dir, "data")
	pid, _, ok := readPostmasterPID(dataDir)
	if !ok || !processAlive(pid) {
		return false, nil
	}
	pidFile := filepath.Join(dataDir, "postmaster.pid")
	for _, step := range postmasterStops {
		if err := syscall.Kill(pid, step.sig); err != nil {
			return true, nil // it exited meanwhile
		}
		// The postmaster removes its pid file once shut down; a killed one
		// cannot, but then the process is gone.
		if waitUntil(ctx, step.wait, func() bool {
			_, err := os.Stat(pidFile)
			return errors.Is(err, os.ErrNotExist) || !processAlive(pid)
		}) {
			return true, nil
		}
		if ctx.Err() != nil {
			return true, fmt.Errorf("pgtest: stop postgres (pid %d): %w", pid, ctx.Err())
		}
	}
	return true, fmt.Errorf("pgtest: postgres (pid %d) did not exit even after SIGKILL", pid)
}

// waitUntil polls cond until it holds (true), wait passes or ctx ends
// (false).
func waitUntil(ctx context.Context, wait time.Duration, cond func() bool) bool {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	ticker := time.NewTicker(20 * time.Millisecond)
	defer ticker.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return false
		case <-timer.C:
			return cond()
		case <-ticker.C:
		}
	}
	return true
}

// readPostmasterPID reads the pid (line 1) and port (line 4) of the
// postmaster.pid file a running server keeps in its data directory.
func readPostmasterPID(dataDir string) (pid, port int, ok bool) {
	f, err := os.Open(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0, 0, false
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() && len(lines) < 4 {
		lines = append(lines, strings.TrimSpace(sc.Text()))
	}
	if len(lines) < 4 {
		return 0, 0, false // still being written
	}
	pid, err1 := strconv.Atoi(lines[0])
	port, err2 := strconv.Atoi(lines[3])
	if err1 != nil || err2 != nil || pid <= 0 {
		return 0, 0, false
	}
	return pid, port, true
}

// processAlive reports whether a process with this pid exists (one of
// another user's counts: signalling it is merely not permitted).
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
