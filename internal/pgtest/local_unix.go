//go:build unix

package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

const (
	// defaultStartTimeout bounds a local start when ctx has no deadline.
	defaultStartTimeout = time.Minute
	// portAttempts covers the race of another process taking the free port
	// we picked before postgres binds it.
	portAttempts = 5
	// maxSocketPath keeps the unix socket path under the kernel's limit
	// (108 bytes on Linux, 104 on the BSDs) with room for ".s.PGSQL.NNNNN".
	maxSocketPath = 80
)

// binaries are the server programs of one PostgreSQL installation.
type binaries struct {
	initdb, postgres string
}

// startLocal starts a cluster from the local binaries.
func startLocal(ctx context.Context, opts Options) (*Server, error) {
	bins, err := findBinaries(ctx)
	if err != nil {
		return nil, err
	}
	cred, err := serverCredential(os.Geteuid(), user.Lookup)
	if err != nil {
		return nil, err
	}
	return startCluster(ctx, opts, bins, cred, freePort)
}

// findBinaries looks for initdb and postgres: in pg_config --bindir, then in
// the highest /usr/lib/postgresql/*/bin (Debian's layout, where pg_config on
// $PATH may belong to the client package), then on $PATH.
func findBinaries(ctx context.Context) (binaries, error) {
	var tried []string

	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "pg_config", "--bindir").Output(); err == nil {
		dir := strings.TrimSpace(string(out))
		if bins, ok := binariesIn(dir); ok {
			return bins, nil
		}
		tried = append(tried, "pg_config --bindir ("+dir+")")
	} else {
		tried = append(tried, "pg_config ("+err.Error()+")")
	}

	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	dirs = slices.DeleteFunc(dirs, func(dir string) bool {
		_, ok := binariesIn(dir)
		return !ok
	})
	if dir := highestVersionDir(dirs); dir != "" {
		bins, _ := binariesIn(dir)
		return bins, nil
	}
	tried = append(tried, "/usr/lib/postgresql/*/bin")

	initdb, err1 := exec.LookPath("initdb")
	postgres, err2 := exec.LookPath("postgres")
	if err1 == nil && err2 == nil {
		return binaries{initdb: initdb, postgres: postgres}, nil
	}
	tried = append(tried, "$PATH")

	return binaries{}, fmt.Errorf("%w (looked in %s)", ErrNoServerBinaries, strings.Join(tried, ", "))
}

func binariesIn(dir string) (binaries, bool) {
	bins := binaries{initdb: filepath.Join(dir, "initdb"), postgres: filepath.Join(dir, "postgres")}
	return bins, dir != "" && isExecutable(bins.initdb) && isExecutable(bins.postgres)
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// highestVersionDir picks, from paths like /usr/lib/postgresql/15/bin, the one
// with the highest version, comparing numerically (15 > 9.6). Paths whose
// version does not parse are ignored.
func highestVersionDir(dirs []string) string {
	best, bestVersion := "", []int(nil)
	for _, dir := range dirs {
		version, ok := parseVersion(filepath.Base(filepath.Dir(dir)))
		if ok && (best == "" || slices.Compare(version, bestVersion) > 0) {
			best, bestVersion = dir, version
		}
	}
	return best
}

func parseVersion(s string) ([]int, bool) {
	var version []int
	for part := range strings.SplitSeq(s, ".") {
		n, err := strconv.Atoi(part)
		if err != nil || n < 0 {
			return nil, false
		}
		version = append(version, n)
	}
	return version, true
}

// serverCredential returns whom to run initdb and postgres as: nil (ourselves)
// unless we are root, which PostgreSQL refuses, then the "postgres" user.
func serverCredential(euid int, lookup func(string) (*user.User, error)) (*syscall.Credential, error) {
	if euid != 0 {
		return nil, nil
	}
	u, err := lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("%w (%v)", ErrRootWithoutPostgresUser, err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("pgtest: user postgres has a non-numeric uid %q or gid %q", u.Uid, u.Gid)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// cluster is a local server's processes and files.
type cluster struct {
	opts     Options
	bins     binaries
	cred     *syscall.Credential
	settings map[string]string
	pickPort func() (int, error)

	dir, dataDir, sockDir, logPath string

	// durable: initdb syncs its files to disk, for a cluster whose data is
	// kept (StartPersistent); throwaway clusters skip that.
	durable bool

	watchdog *exec.Cmd

	// mu serialises Stop, Shutdown and Restart, which may come from
	// different goroutines of a test.
	mu       sync.Mutex
	removed  bool          // stop ran: nothing may start again
	pm       *exec.Cmd     // the postmaster; nil while shut down
	pmExited chan struct{} // closed when pm has exited
	logFile  *os.File
	port     int
}

// startCluster starts a cluster from bins, run as cred (nil: ourselves), on
// ports from pickPort.
func startCluster(ctx context.Context, opts Options, bins binaries, cred *syscall.Credential, pickPort func() (int, error)) (*Server, error) {
	begin := time.Now()
	settings, err := serverSettings(opts.Settings)
	if err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultStartTimeout)
		defer cancel()
	}

	dir, err := os.MkdirTemp(tempBase(cred != nil), "gworker-pgtest-")
	if err != nil {
		return nil, fmt.Errorf("pgtest: create the cluster directory: %w", err)
	}
	c := &cluster{
		opts:     opts,
		bins:     bins,
		cred:     cred,
		settings: settings,
		pickPort: pickPort,
		dir:      dir,
		dataDir:  filepath.Join(dir, "data"),
		sockDir:  filepath.Join(dir, "sock"),
		logPath:  filepath.Join(dir, "postgres.log"),
	}
	if err := c.start(ctx); err != nil {
		if stopErr := c.stop(); stopErr != nil {
			err = errors.Join(err, stopErr)
		}
		return nil, err
	}

	version := c.serverVersion(ctx)
	opts.logf("pgtest: PostgreSQL %s from %s ready on 127.0.0.1:%d in %v (directory %s)",
		version, filepath.Dir(bins.postgres), c.port, time.Since(begin).Round(time.Millisecond), dir)
	return &Server{
		source:   SourceLocal,
		url:      c.url(),
		dir:      dir,
		pid:      c.pm.Process.Pid,
		stop:     c.stop,
		shutdown: c.shutdown,
		restart:  c.restart,
	}, nil
}

func (c *cluster) url() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.port)
}

func (c *cluster) start(ctx context.Context) error {
	// The watchdog comes first so that even a kill during initdb leaves
	// nothing behind.
	if err := c.startWatchdog(); err != nil {
		c.opts.logf("pgtest: no watchdog, the cluster outlives a killed process: %v", err)
	}
	if err := os.Mkdir(c.sockDir, 0o700); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	if c.cred != nil {
		for _, d := range []string{c.dir, c.sockDir} {
			if err := os.Chown(d, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
				return fmt.Errorf("pgtest: hand the cluster directory to user postgres: %w", err)
			}
		}
	}
	if err := c.initdb(ctx); err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		err := c.launch(ctx)
		if err == nil {
			return nil
		}
		if !errors.Is(err, ErrPortInUse) || attempt == portAttempts {
			return err
		}
		c.opts.logf("pgtest: port %d was taken, retrying on another", c.port)
	}
}

func (c *cluster) initdb(ctx context.Context) error {
	args := []string{
		"-D", c.dataDir,
		"-U", "postgres",
		"--auth=trust",
		"--encoding=UTF8",
		"--no-locale",
	}
	if !c.durable {
		args = append(args, "--no-sync")
	}
	cmd := exec.CommandContext(ctx, c.bins.initdb, args...)
	cmd.Dir = c.dir // the caller's working directory may be closed to the postgres user
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	cmd.WaitDelay = 5 * time.Second // initdb's own children hold the output pipe
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("pgtest: %s failed: %w\n%s", c.bins.initdb, err, tail(out, 20))
	}
	return nil
}

// ErrPortInUse is returned (wrapped) by StartPersistent when another
// program listens on the port asked for.
var ErrPortInUse = errors.New("port already in use")

// launch starts the postmaster on a free port and waits until it answers.
func (c *cluster) launch(ctx context.Context) error {
	port, err := c.pickPort()
	if err != nil {
		return err
	}
	return c.launchOn(ctx, port, os.O_TRUNC)
}

// launchOn starts the postmaster on port and waits until it answers. logMode
// is os.O_TRUNC for a first start, os.O_APPEND for a restart, whose log
// continues the one before.
func (c *cluster) launchOn(ctx context.Context, port, logMode int) error {
	c.port = port
	logFile, err := os.OpenFile(c.logPath, os.O_CREATE|os.O_WRONLY|logMode, 0o600)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	sockDir := c.sockDir
	if len(sockDir) > maxSocketPath {
		sockDir = "" // too long for a socket path: TCP only
	}
	args := []string{"-D", c.dataDir,
		"-c", "port=" + strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories=" + sockDir,
	}
	for _, name := range slices.Sorted(maps.Keys(c.settings)) {
		args = append(args, "-c", name+"="+c.settings[name])
	}
	// Not CommandContext: the server outlives the start's context.
	cmd := exec.Command(c.bins.postgres, args...)
	cmd.Dir = c.dir
	// A file, not a pipe, so no goroutine copies and nothing keeps a test
	// runner's pipe open after we are gone.
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Its own process group: a terminal's Ctrl-C reaches us, and we stop it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: c.cred}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("pgtest: start %s: %w", c.bins.postgres, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	c.pm, c.pmExited, c.logFile = cmd, exited, logFile

	if err := c.waitReady(ctx); err != nil {
		if stopErr := c.stopPostmaster(); stopErr != nil {
			err = errors.Join(err, stopErr)
		}
		return err
	}
	return nil
}

// waitReady polls until the postmaster accepts a connection, it exits, or ctx
// ends.
func (c *cluster) waitReady(ctx context.Context) error {
	ticker := time.NewTicker(20 * time.Millisecond)
	defer ticker.Stop()
	for {
		err := c.probe(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-c.pmExited:
			log := c.logTail()
			if strings.Contains(log, "could not bind") || strings.Contains(log, "Address already in use") {
				return fmt.Errorf("pgtest: postgres on port %d: %w", c.port, ErrPortInUse)
			}
			return fmt.Errorf("pgtest: postgres exited during start (%v); its log ends:\n%s", c.pm.ProcessState, log)
		case <-ctx.Done():
			return fmt.Errorf("pgtest: postgres not ready on port %d: %w (last attempt: %v); its log ends:\n%s",
				c.port, ctx.Err(), err, c.logTail())
		case <-ticker.C:
		}
	}
}

// probe connects once and checks that the server answering is ours, not
// another process's that won the race for the port.
func (c *cluster) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.url())
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var dataDir string
	if err := conn.QueryRow(ctx, "select current_setting('data_directory')").Scan(&dataDir); err != nil {
		return err
	}
	if filepath.Clean(dataDir) != c.dataDir && !sameFile(dataDir, c.dataDir) {
		return fmt.Errorf("port %d is answered by another server (data directory %s)", c.port, dataDir)
	}
	return nil
}

func (c *cluster) serverVersion(ctx context.Context) string {
	conn, err := pgx.Connect(ctx, c.url())
	if err != nil {
		return "(version unknown)"
	}
	defer conn.Close(ctx)
	var version string
	if err := conn.QueryRow(ctx, "show server_version").Scan(&version); err != nil {
		return "(version unknown)"
	}
	return version
}

func (c *cluster) logTail() string {
	b, err := os.ReadFile(c.logPath)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	return tail(b, 20)
}

// stop stops the postmaster and the watchdog and removes the directory.
func (c *cluster) stop() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.removed = true
	var errs []error
	if err := c.stopPostmaster(); err != nil {
		errs = append(errs, err)
	}
	c.stopWatchdog()
	if err := os.RemoveAll(c.dir); err != nil {
		errs = append(errs, fmt.Errorf("pgtest: remove the cluster directory: %w", err))
	}
	return errors.Join(errs...)
}

// errRemoved is returned by Shutdown and Restart after Stop.
var errRemoved = errors.New("pgtest: the server was stopped and its directory removed; it cannot be restarted")

// shutdown stops the postmaster as pg_ctl stop -m mode does, keeping the
// data directory and the port for restart. A server already shut down
// stays so.
func (c *cluster) shutdown(mode ShutdownMode) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.removed {
		return errRemoved
	}
	switch mode {
	case ShutdownFast:
		return c.stopPostmaster()
	case ShutdownImmediate:
		return c.stopPostmasterFrom(1)
	}
	return fmt.Errorf("pgtest: unknown shutdown mode %q (want %q or %q)", mode, ShutdownFast, ShutdownImmediate)
}

// restart starts the postmaster again on the same port and data directory
// and waits until it answers; a running one is first shut down fast, as
// pg_ctl restart does. After an immediate shutdown the server recovers
// from its WAL first, which the wait includes.
func (c *cluster) restart(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.removed {
		return errRemoved
	}
	if err := c.stopPostmaster(); err != nil {
		return err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultStartTimeout)
		defer cancel()
	}
	return c.launchOn(ctx, c.port, os.O_APPEND)
}

// postmasterStops are the signals that stop a postmaster, in escalating
// order: fast shutdown (SIGINT: disconnect clients, checkpoint, stop
// cleanly), immediate (SIGQUIT: no checkpoint, crash recovery at the next
// start), then SIGKILL; each waits before escalating.
var postmasterStops = []struct {
	sig  syscall.Signal
	wait time.Duration
}{
	{syscall.SIGINT, 10 * time.Second},
	{syscall.SIGQUIT, 5 * time.Second},
	{syscall.SIGKILL, 5 * time.Second},
}

// stopPostmaster asks for a fast shutdown and escalates if it lingers.
func (c *cluster) stopPostmaster() error { return c.stopPostmasterFrom(0) }

// stopPostmasterFrom stops the postmaster starting with
// postmasterStops[first].
func (c *cluster) stopPostmasterFrom(first int) error {
	if c.pm == nil {
		return nil
	}
	defer func() {
		c.logFile.Close()
		c.pm = nil
	}()
	for _, step := range postmasterStops[first:] {
		select {
		case <-c.pmExited:
			return nil
		default:
		}
		_ = c.pm.Process.Signal(step.sig) // fails only if it already exited
		timer := time.NewTimer(step.wait)
		select {
		case <-c.pmExited:
			timer.Stop()
			return nil
		case <-timer.C:
			c.opts.logf("pgtest: postgres (pid %d) still running %v after %v", c.pm.Process.Pid, step.wait, step.sig)
		}
	}
	return fmt.Errorf("pgtest: postgres (pid %d) did not exit even after SIGKILL", c.pm.Process.Pid)
}

// watchdogScript runs beside the test process and cleans up when that process
// is gone without having stopped the cluster (killed, crashed, timed out):
// it shuts the postmaster down (fast, then immediate, then kill) and removes
// the directory. The postmaster writes its pid to the first line of
// postmaster.pid and removes the file when it has shut down, which also
// tells a finished server from a zombie nobody reaps.
const watchdogScript = `
parent=$1 dir=$2
while kill -0 "$parent" 2>/dev/null; do sleep 1; done
pidfile="$dir/data/postmaster.pid"
pid=
[ -f "$pidfile" ] && read -r pid < "$pidfile"
case "$pid" in ''|*[!0-9]*) pid= ;; esac
if [ -n "$pid" ]; then
	for sig in INT QUIT KILL; do
		kill -"$sig" "$pid" 2>/dev/null || break
		i=0
		while [ -f "$pidfile" ] && kill -0 "$pid" 2>/dev/null && [ "$i" -lt 50 ]; do
			sleep 0.1 2>/dev/null || sleep 1
			i=$((i+1))
		done
		[ -f "$pidfile" ] || break
	done
fi
rm -rf "$dir"
`

func (c *cluster) startWatchdog() error {
	cmd := exec.Command("/bin/sh", "-c", watchdogScript, "pgtest-watchdog", strconv.Itoa(os.Getpid()), c.dir)
	// Its own process group, so a terminal's Ctrl-C does not end it before it
	// could act; no stdio, so it keeps no pipe of a test runner open.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	c.watchdog = cmd
	return nil
}

func (c *cluster) stopWatchdog() {
	if c.watchdog == nil {
		return
	}
	// The whole group: the shell and the sleep it may be waiting on.
	_ = syscall.Kill(-c.watchdog.Process.Pid, syscall.SIGKILL)
	_ = c.watchdog.Wait()
	c.watchdog = nil
}

// tempBase returns where to create the cluster directory. A server running
// as another user must be able to reach it, so every parent must be
// searchable by others; /tmp is when $TMPDIR is not.
func tempBase(forOtherUser bool) string {
	base, err := filepath.Abs(os.TempDir())
	if err != nil || (forOtherUser && !searchableByOthers(base)) {
		return "/tmp"
	}
	return base
}

// sameFile reports whether two paths name one file, however spelled (a
// persistent cluster's directory may be reached through a symbolic link).
func sameFile(a, b string) bool {
	fa, err1 := os.Stat(a)
	fb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(fa, fb)
}

func searchableByOthers(dir string) bool {
	for {
		fi, err := os.Stat(dir)
		if err != nil || fi.Mode().Perm()&0o001 == 0 {
			return false
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return true
		}
		dir = parent
	}
}

// freePort asks the kernel for a free port. Another process may take it
// before postgres binds it; launch's caller retries then.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgtest: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tail returns the last n lines of b.
func tail(b []byte, n int) string {
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
