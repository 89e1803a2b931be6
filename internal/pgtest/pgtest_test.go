//go:build unix

package pgtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gworker/gworker/internal/testkit"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

// The helper process: this test binary run again as a second, independent
// test binary.
const (
	helperEnv    = "GWORKER_PGTEST_HELPER"
	parentURLEnv = "GWORKER_PGTEST_PARENT_URL"
	helperPrefix = "PGTEST_CHILD"
)

func testContext(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	ctx := testContext(t, 10*time.Second)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect to %s: %v", url, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func queryString(t *testing.T, url, sql string) string {
	t.Helper()
	var s string
	if err := connect(t, url).QueryRow(testContext(t, 10*time.Second), sql).Scan(&s); err != nil {
		t.Fatalf("%s on %s: %v", sql, url, err)
	}
	return s
}

func selectOne(t *testing.T, url string) {
	t.Helper()
	if got := queryString(t, url, "select 1::text"); got != "1" {
		t.Fatalf("select 1 on %s = %q", url, got)
	}
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

func port(t *testing.T, rawURL string) int {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatalf("parse %q: %v", rawURL, err)
	}
	p, err := strconv.Atoi(u.Port())
	if err != nil {
		t.Fatalf("port of %q: %v", rawURL, err)
	}
	return p
}

func requireLocalBinaries(t *testing.T) binaries {
	t.Helper()
	bins, err := findBinaries(t.Context())
	if err != nil {
		t.Fatalf("this test is about local clusters, which need the PostgreSQL server binaries "+
			"(Debian/Ubuntu: apt-get install postgresql; make test does it when run as root): %v", err)
	}
	return bins
}

func gone(path string) bool {
	_, err := os.Stat(path)
	return errors.Is(err, fs.ErrNotExist)
}

func TestURLAnswersSelectOne(t *testing.T) {
	t.Parallel()
	u := URL(t)
	if !strings.HasPrefix(u, "postgres://") && os.Getenv(EnvURL) == "" {
		t.Errorf("URL = %q, want a postgres:// URL", u)
	}
	var one int
	if err := Pool(t).QueryRow(testContext(t, 10*time.Second), "select 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("select 1 = %d, %v", one, err)
	}
}

func TestSchemaNamesAreUniqueIdentifiers(t *testing.T) {
	t.Parallel()
	valid := regexp.MustCompile(`^t_[0-9a-f]{12}$`)
	seen := make(map[string]bool)
	for range 10000 {
		name := newSchemaName()
		if !valid.MatchString(name) {
			t.Fatalf("schema name %q is not t_ and 12 lowercase hex digits", name)
		}
		if seen[name] {
			t.Fatalf("schema name %q handed out twice", name)
		}
		seen[name] = true
	}
}

func TestSchemaIsDroppedAtCleanup(t *testing.T) {
	t.Parallel()
	pool := Pool(t)
	ctx := testContext(t, 30*time.Second)

	var names []string
	t.Run("test using schemas", func(t *testing.T) {
		used, unused := Schema(t), Schema(t)
		names = []string{used, unused}
		if used == unused {
			t.Fatalf("Schema returned %q twice", used)
		}
		// Something for CASCADE to drop, as migrations would leave.
		ident := pgx.Identifier{used}.Sanitize()
		for _, sql := range []string{
			"create schema " + ident,
			"create table " + ident + ".jobs (id bigint primary key)",
			"insert into " + ident + ".jobs values (1)",
		} {
			if _, err := pool.Exec(ctx, sql); err != nil {
				t.Fatalf("%s: %v", sql, err)
			}
		}
	})

	// The subtest has ended and its cleanups ran: the used schema is dropped,
	// and the never-created one did not fail the subtest.
	var left int
	err := pool.QueryRow(ctx,
		"select count(*) from information_schema.schemata where schema_name = any($1)", names).Scan(&left)
	if err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Fatalf("%d of the schemas %v still exist after the test's cleanup", left, names)
	}
}

// takenPort returns a port another server listens on: the process-wide one
// when it is local, so a probe would find a PostgreSQL that is not ours, else a
// plain listener.
func takenPort(t *testing.T) int {
	t.Helper()
	if s, err := processServer(t); err == nil && s.Source() == SourceLocal {
		return port(t, s.URL())
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l.Addr().(*net.TCPAddr).Port
}

func TestTwoLocalServersInOneProcess(t *testing.T) {
	t.Parallel()
	bins := requireLocalBinaries(t)
	cred, err := serverCredential(os.Geteuid(), user.Lookup)
	if err != nil {
		t.Fatal(err)
	}
	ctx := testContext(t, time.Minute)

	// Server b is first handed a port another server already listens on, as
	// when two processes pick the same free port: its start must not mistake
	// that server for its own, and must retry on another port.
	taken := takenPort(t)
	var picks int
	pickPort := func() (int, error) {
		picks++
		if picks == 1 {
			return taken, nil
		}
		return freePort()
	}
	var logMu sync.Mutex
	var bLogs []string
	bLogf := func(format string, args ...any) {
		t.Logf(format, args...)
		logMu.Lock()
		defer logMu.Unlock()
		bLogs = append(bLogs, fmt.Sprintf(format, args...))
	}

	// Both start at the same time; a with a durability setting as a
	// benchmark would want.
	var a, b *Server
	var aErr, bErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		a, aErr = startCluster(ctx, Options{Logf: t.Logf, Settings: map[string]string{"fsync": "on"}}, bins, cred, freePort)
	})
	wg.Go(func() {
		b, bErr = startCluster(ctx, Options{Logf: bLogf}, bins, cred, pickPort)
	})
	wg.Wait()
	if a != nil {
		t.Cleanup(func() { _ = a.Stop() })
	}
	if b != nil {
		t.Cleanup(func() { _ = b.Stop() })
	}
	if aErr != nil || bErr != nil {
		t.Fatalf("start: %v; %v", aErr, bErr)
	}

	if port(t, a.URL()) == port(t, b.URL()) {
		t.Errorf("both servers on port %d", port(t, a.URL()))
	}
	if a.Dir() == b.Dir() {
		t.Errorf("both servers in %s", a.Dir())
	}
	if got := port(t, b.URL()); got == taken || picks != 2 {
		t.Errorf("server b on port %d after %d picks; port %d was taken", got, picks, taken)
	}
	if want := fmt.Sprintf("port %d was taken", taken); !strings.Contains(strings.Join(bLogs, "\n"), want) {
		t.Errorf("server b's logs do not say %q", want)
	}
	for name, s := range map[string]*Server{"a": a, "b": b} {
		if s.Source() != SourceLocal || !strings.HasSuffix(s.URL(), "sslmode=disable") {
			t.Errorf("server %s: source %q, URL %q", name, s.Source(), s.URL())
		}
		selectOne(t, s.URL())
		if dd := queryString(t, s.URL(), "select current_setting('data_directory')"); dd != filepath.Join(s.Dir(), "data") {
			t.Errorf("server %s: data_directory %s, want it in %s", name, dd, s.Dir())
		}
	}
	if got := queryString(t, a.URL(), "show fsync"); got != "on" {
		t.Errorf("fsync with Settings{fsync: on} = %s", got)
	}
	if got := queryString(t, b.URL(), "show fsync"); got != "off" {
		t.Errorf("fsync by default = %s", got)
	}

	for name, s := range map[string]*Server{"a": a, "b": b} {
		begin := time.Now()
		// Concurrent and repeated Stops share one stop.
		var wg sync.WaitGroup
		stopErrs := make([]error, 3)
		for j := range stopErrs {
			wg.Go(func() { stopErrs[j] = s.Stop() })
		}
		wg.Wait()
		for _, err := range stopErrs {
			if err != nil {
				t.Errorf("server %s: Stop: %v", name, err)
			}
		}
		t.Logf("server %s stopped in %v", name, time.Since(begin).Round(time.Millisecond))
		if !gone(s.Dir()) {
			t.Errorf("server %s: %s still exists after Stop", name, s.Dir())
		}
		if answers(s.URL()) {
			t.Errorf("server %s: still answers after Stop", name)
		}
	}
}

// TestEarlyExitReportsLogTail launches postgres on a data directory that was
// never initialised: it exits at once, and the error must say so with its log.
func TestEarlyExitReportsLogTail(t *testing.T) {
	t.Parallel()
	bins := requireLocalBinaries(t)
	cred, err := serverCredential(os.Geteuid(), user.Lookup)
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp(tempBase(cred != nil), "gworker-pgtest-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	c := &cluster{
		bins:     bins,
		cred:     cred,
		settings: testSpeedSettings,
		pickPort: freePort,
		dir:      dir,
		dataDir:  filepath.Join(dir, "data"),
		sockDir:  dir,
		logPath:  filepath.Join(dir, "postgres.log"),
	}
	err = c.launch(testContext(t, time.Minute))
	if err == nil {
		_ = c.stopPostmaster()
		t.Fatal("postgres started without a data directory")
	}
	msg := err.Error()
	if !strings.Contains(msg, "exited during start") || !strings.Contains(msg, c.dataDir) {
		t.Fatalf("error does not say postgres exited and why:\n%s", msg)
	}
	t.Logf("%v", err)
}

// TestLocalServerOwnership checks a local server's files and process
// belong to the user it runs as: postgres when we are root. It checks the
// process-wide server when that is local, else a cluster of its own.
func TestLocalServerOwnership(t *testing.T) {
	t.Parallel()
	s, err := processServer(t)
	if err != nil {
		t.Fatal(err)
	}
	if s.Source() != SourceLocal {
		t.Logf("the process-wide server comes from %s; checking a local cluster of this test's own", s.Source())
		if s, err = StartLocal(testContext(t, 2*time.Minute), Options{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Stop() })
	}
	u := s.URL()
	wantUID := os.Geteuid()
	if wantUID == 0 {
		pg, err := user.Lookup("postgres")
		if err != nil {
			t.Fatal(err)
		}
		wantUID, _ = strconv.Atoi(pg.Uid)
	}
	paths := []string{s.Dir(), filepath.Join(s.Dir(), "data")}
	if _, err := os.Stat("/proc/self"); err == nil {
		paths = append(paths, "/proc/"+strconv.Itoa(s.pid)) // owned by the process's user
	}
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if uid := int(fi.Sys().(*syscall.Stat_t).Uid); uid != wantUID {
			t.Errorf("%s is owned by uid %d, want %d", p, uid, wantUID)
		}
	}
	if dd := queryString(t, u, "select current_setting('data_directory')"); !strings.HasPrefix(dd, s.Dir()+"/") {
		t.Errorf("data_directory %s is not in %s", dd, s.Dir())
	}
	if cu := queryString(t, u, "select current_user::text"); cu != "postgres" {
		t.Errorf("current_user = %s, want postgres", cu)
	}
}

// helper is a second test binary holding its own process-wide server.
type helper struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	out    *testkit.Buffer // the helper's output, which exec writes from its own goroutine
	exited chan struct{}   // closed after cmd.Wait returned
	url    string
	dir    string
}

// startHelper runs this test binary again as TestHelperProcess, without
// $GWORKER_TEST_DATABASE_URL so that it starts its own server, and waits until
// that server answers.
func startHelper(t *testing.T, parentURL string) *helper {
	t.Helper()
	ctx := testContext(t, 2*time.Minute)
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperProcess$", "-test.timeout=2m")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, EnvURL+"=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, helperEnv+"=1", parentURLEnv+"="+parentURL)
	h := &helper{cmd: cmd, out: new(testkit.Buffer), exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = h.out, h.out
	// Bounds Wait if a grandchild kept the output pipe open, which pgtest must
	// not let happen.
	cmd.WaitDelay = 10 * time.Second
	var err error
	if h.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = cmd.Wait()
		close(h.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-h.exited
	})

	report := regexp.MustCompile(`(?m)^` + helperPrefix + ` (\S+) (\S+)$`)
	testkit.EventuallyWithin(t, time.Minute, "the helper reports its server", func() bool {
		select {
		case <-h.exited:
			t.Fatalf("the helper exited (%v) before reporting its server:\n%s", cmd.ProcessState, h.out)
		default:
		}
		m := report.FindStringSubmatch(h.out.String())
		if m != nil {
			h.url, h.dir = m[1], m[2]
		}
		return m != nil
	})
	return h
}

// TestHelperProcess is not a test: it is the body of the helper process.
func TestHelperProcess(t *testing.T) {
	if os.Getenv(helperEnv) == "" {
		return
	}
	u := URL(t)
	s, _ := processServer(t)
	selectOne(t, u)
	selectOne(t, os.Getenv(parentURLEnv))
	fmt.Printf("%s %s %s\n", helperPrefix, u, s.Dir())
	// Hold the server until the parent closes stdin, kills or signals us.
	_, _ = io.Copy(io.Discard, os.Stdin)
}

func TestSecondTestBinaryDoesNotCollide(t *testing.T) {
	t.Parallel()
	requireLocalBinaries(t)
	parentURL := URL(t)
	parent, _ := processServer(t)
	h := startHelper(t, parentURL)

	// Both answer while both run (the helper also queried ours).
	selectOne(t, parentURL)
	selectOne(t, h.url)
	if parent.Source() == SourceLocal {
		if port(t, parentURL) == port(t, h.url) || parent.Dir() == h.dir {
			t.Errorf("parent %s in %s, helper %s in %s", parentURL, parent.Dir(), h.url, h.dir)
		}
	}

	h.stdin.Close()
	<-h.exited
	if !h.cmd.ProcessState.Success() {
		t.Fatalf("helper: %v\n%s", h.cmd.ProcessState, h.out)
	}
	// Main stopped the helper's server before the helper exited.
	if !gone(h.dir) {
		t.Errorf("the helper's %s still exists after it exited", h.dir)
	}
	if answers(h.url) {
		t.Errorf("the helper's server still answers after it exited")
	}
	selectOne(t, parentURL)
}

func TestInterruptedTestBinaryStopsItsServer(t *testing.T) {
	t.Parallel()
	requireLocalBinaries(t)
	h := startHelper(t, URL(t))

	if err := h.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	<-h.exited
	if ws, ok := h.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGINT {
		t.Errorf("helper ended with %v, want killed by its re-raised SIGINT\n%s", h.cmd.ProcessState, h.out)
	}
	// Stopped by the helper itself before it died, not later by the watchdog.
	if !gone(h.dir) {
		t.Errorf("the helper's %s still exists right after SIGINT ended it", h.dir)
	}
	if answers(h.url) {
		t.Errorf("the helper's server still answers after SIGINT ended it")
	}
}

func TestKilledTestBinaryLeavesNothingBehind(t *testing.T) {
	t.Parallel()
	requireLocalBinaries(t)
	h := startHelper(t, URL(t))

	if err := h.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-h.exited
	took := testkit.EventuallyWithin(t, 20*time.Second, "the killed helper's server stopped and directory removed", func() bool {
		return gone(h.dir) && !answers(h.url)
	})
	t.Logf("the watchdog cleaned up %v after the helper was killed", took.Round(time.Millisecond))
}

func TestStartUsesEnvURLUnchanged(t *testing.T) {
	// Not parallel: t.Setenv. Parallel tests wait until this has finished
	// and the variable is restored.
	const want = "postgres://someone:secret@db.invalid:6543/gw?sslmode=require&application_name=x"
	t.Setenv(EnvURL, want)
	s, err := Start(testContext(t, 10*time.Second), Options{Settings: map[string]string{"fsync": "on"}})
	if err != nil {
		t.Fatal(err)
	}
	if s.URL() != want || s.Source() != SourceEnv || s.Dir() != "" {
		t.Fatalf("Start = %q from %s in %q, want %q from env", s.URL(), s.Source(), s.Dir(), want)
	}
	for range 2 {
		if err := s.Stop(); err != nil {
			t.Fatalf("Stop: %v", err)
		}
	}
}

func unavailable(err error) func(context.Context, Options) (*Server, error) {
	return func(context.Context, Options) (*Server, error) { return nil, err }
}

func TestEnvURLComesFirst(t *testing.T) {
	t.Parallel()
	const want = "host=/nonexistent dbname=x"
	s, err := start(t.Context(), Options{}, sources{
		envURL: want,
		local:  unavailable(errors.New("local must not be tried")),
		docker: unavailable(errors.New("docker must not be tried")),
	})
	if err != nil || s.URL() != want || s.Source() != SourceEnv {
		t.Fatalf("start = %v, %v; want %q from env", s, err, want)
	}
}

func TestNoSourceSaysWhatToInstall(t *testing.T) {
	t.Parallel()
	_, err := start(t.Context(), Options{}, sources{
		local:  unavailable(fmt.Errorf("%w (looked in $PATH)", ErrNoServerBinaries)),
		docker: unavailable(fmt.Errorf("%w: no socket", errNoDockerDaemon)),
	})
	if !errors.Is(err, ErrNoPostgreSQL) {
		t.Fatalf("err = %v, want ErrNoPostgreSQL", err)
	}
	for _, want := range []string{EnvURL, "apt-get install postgresql", "Docker daemon", "looked in $PATH", "no socket"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q: %v", want, err)
		}
	}
}

func TestLocalFailureIsReportedWhenDockerIsMissing(t *testing.T) {
	t.Parallel()
	_, err := start(t.Context(), Options{}, sources{
		local:  unavailable(fmt.Errorf("%w (user: unknown user postgres)", ErrRootWithoutPostgresUser)),
		docker: unavailable(fmt.Errorf("%w: no socket", errNoDockerDaemon)),
	})
	if !errors.Is(err, ErrRootWithoutPostgresUser) || errors.Is(err, ErrNoPostgreSQL) {
		t.Fatalf("err = %v, want ErrRootWithoutPostgresUser and not ErrNoPostgreSQL", err)
	}
	if !strings.Contains(err.Error(), "no socket") {
		t.Errorf("error does not say why Docker was no fallback: %v", err)
	}
}

func TestInvalidSettingsAreRejected(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"port", "Listen_Addresses", "unix_socket_directories", "", "a=b", "a b"} {
		_, err := start(t.Context(), Options{Settings: map[string]string{name: "x"}}, sources{
			local:  unavailable(errors.New("local must not be tried")),
			docker: unavailable(errors.New("docker must not be tried")),
		})
		if err == nil || !strings.Contains(err.Error(), "Options.Settings") {
			t.Errorf("setting %q: err = %v, want an Options.Settings error", name, err)
		}
	}
	got, err := serverSettings(map[string]string{"fsync": "on", "work_mem": "64MB"})
	if err != nil || got["fsync"] != "on" || got["work_mem"] != "64MB" || got["full_page_writes"] != "off" {
		t.Errorf("serverSettings = %v, %v", got, err)
	}
}

func TestDockerProbeFailsFast(t *testing.T) {
	t.Parallel()
	begin := time.Now()
	err := probeDocker(t.Context())
	took := time.Since(begin)
	t.Logf("probeDocker: %v after %v", err, took.Round(time.Millisecond))
	if took > dockerProbeTimeout+2*time.Second {
		t.Errorf("probeDocker took %v", took)
	}
	_, statErr := os.Stat("/var/run/docker.sock")
	if os.Getenv("DOCKER_HOST") == "" && errors.Is(statErr, fs.ErrNotExist) {
		if err == nil {
			t.Fatal("probeDocker found a daemon without DOCKER_HOST or /var/run/docker.sock")
		}
		// And the Docker source reports itself as missing, not as failed.
		if _, err := startDocker(t.Context(), Options{}); !errors.Is(err, errNoDockerDaemon) {
			t.Errorf("startDocker = %v, want errNoDockerDaemon", err)
		}
	}
}

func TestServerCredential(t *testing.T) {
	t.Parallel()
	noUser := func(name string) (*user.User, error) { return nil, user.UnknownUserError(name) }
	if cred, err := serverCredential(1000, noUser); cred != nil || err != nil {
		t.Errorf("not root: %v, %v; want nil, nil", cred, err)
	}
	_, err := serverCredential(0, noUser)
	if !errors.Is(err, ErrRootWithoutPostgresUser) || !strings.Contains(err.Error(), "useradd") {
		t.Errorf("root without postgres user: err = %v", err)
	}
	pg := func(string) (*user.User, error) { return &user.User{Uid: "101", Gid: "104"}, nil }
	if cred, err := serverCredential(0, pg); err != nil || cred.Uid != 101 || cred.Gid != 104 {
		t.Errorf("root: %+v, %v; want uid 101 gid 104", cred, err)
	}
}

func TestHighestVersionDir(t *testing.T) {
	t.Parallel()
	dirs := []string{
		"/usr/lib/postgresql/9.6/bin",
		"/usr/lib/postgresql/15/bin",
		"/usr/lib/postgresql/current/bin",
		"/usr/lib/postgresql/10/bin",
	}
	if got := highestVersionDir(dirs); got != "/usr/lib/postgresql/15/bin" {
		t.Errorf("highestVersionDir = %q", got)
	}
	if got := highestVersionDir(nil); got != "" {
		t.Errorf("highestVersionDir(nil) = %q", got)
	}
}

func TestFindBinaries(t *testing.T) {
	t.Parallel()
	bins, err := findBinaries(t.Context())
	if err != nil {
		if !errors.Is(err, ErrNoServerBinaries) {
			t.Fatalf("err = %v, want ErrNoServerBinaries", err)
		}
		t.Logf("no local binaries: %v", err)
		return
	}
	for _, p := range []string{bins.initdb, bins.postgres} {
		if !isExecutable(p) {
			t.Errorf("%s is not an executable", p)
		}
	}
	t.Logf("found %+v", bins)
}

func TestTempBase(t *testing.T) {
	t.Parallel()
	if !searchableByOthers("/tmp") {
		t.Fatal("/tmp is not searchable by others")
	}
	closed := t.TempDir()
	if err := os.Chmod(closed, 0o700); err != nil {
		t.Fatal(err)
	}
	if searchableByOthers(filepath.Join(closed, "sub")) {
		t.Errorf("%s/sub is searchable by others", closed)
	}
}
