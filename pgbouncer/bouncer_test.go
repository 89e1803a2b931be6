package pgbouncer_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/gworker/gworker/internal/pgtest"
	"github.com/gworker/gworker/internal/testkit"
)

// envBinary names a pgbouncer binary to use instead of the one on $PATH.
const envBinary = "GWORKER_PGBOUNCER"

// bouncer is a pgbouncer process in transaction pooling mode in front of
// the test server.
type bouncer struct {
	direct  string // PostgreSQL itself
	pooled  string // the same database through pgbouncer, transaction pooling
	session string // the same through pgbouncer, session pooling
	port    int
	cmd     *exec.Cmd
	exited  chan struct{}
	log     *testkit.Buffer
	dir     string
}

var (
	bouncerOnce sync.Once
	theBouncer  *bouncer
	bouncerErr  error
)

// pgbouncerFor returns the package's pgbouncer, starting it (and the test
// server behind it) on first use; it fails t when it cannot.
func pgbouncerFor(t *testing.T) *bouncer {
	t.Helper()
	direct := pgtest.URL(t)
	bouncerOnce.Do(func() { theBouncer, bouncerErr = startBouncer(direct) })
	if bouncerErr != nil {
		t.Fatalf("%v", bouncerErr)
	}
	return theBouncer
}

// stopBouncer stops the package's pgbouncer, if it started.
func stopBouncer() {
	if theBouncer != nil {
		theBouncer.stop()
	}
}

// findBinary returns the pgbouncer to run: $GWORKER_PGBOUNCER, else the
// one on $PATH, else Debian's /usr/sbin/pgbouncer (not on every user's
// $PATH).
func findBinary() (string, error) {
	if b := os.Getenv(envBinary); b != "" {
		if fi, err := os.Stat(b); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			return "", fmt.Errorf("$%s=%s is not an executable pgbouncer binary", envBinary, b)
		}
		return b, nil
	}
	if b, err := exec.LookPath("pgbouncer"); err == nil {
		return b, nil
	}
	for _, b := range []string{"/usr/sbin/pgbouncer", "/usr/local/sbin/pgbouncer", "/usr/local/bin/pgbouncer"} {
		if fi, err := os.Stat(b); err == nil && fi.Mode()&0o111 != 0 {
			return b, nil
		}
	}
	return "", errors.New("pgbouncer is not installed; these tests start one in front of their PostgreSQL. " +
		"Install it (Debian/Ubuntu: apt-get install pgbouncer; macOS: brew install pgbouncer; `make test` installs it " +
		"when it runs as root), or set " + envBinary + " to a pgbouncer binary")
}

// credential returns whom to run pgbouncer as: ourselves, unless we are
// root, which pgbouncer refuses; then the "postgres" OS user, as pgtest
// runs the server.
func credential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf(`running as root, which pgbouncer refuses, and there is no "postgres" OS user to run it as: %w`, err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("user postgres has a non-numeric uid %q or gid %q", u.Uid, u.Gid)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// quote makes v one value of a pgbouncer connection string.
func quote(v string) string {
	return "'" + strings.ReplaceAll(strings.ReplaceAll(v, `\`, `\\`), "'", `\'`) + "'"
}

func startBouncer(direct string) (*bouncer, error) {
	bin, err := findBinary()
	if err != nil {
		return nil, err
	}
	cred, err := credential()
	if err != nil {
		return nil, err
	}
	cfg, err := pgx.ParseConfig(direct)
	if err != nil {
		return nil, fmt.Errorf("the test server's URL: %w", err)
	}
	// pgbouncer, run as another user, must reach its directory; /tmp is
	// searchable by all where $TMPDIR may not be.
	base := ""
	if cred != nil {
		base = "/tmp"
	}
	dir, err := os.MkdirTemp(base, "gworker-pgbouncer-")
	if err != nil {
		return nil, err
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, err
		}
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}

	// The clients' user name and password are not checked (auth_type
	// any); pgbouncer logs in to PostgreSQL as the server's user.
	server := fmt.Sprintf("host=%s port=%d dbname=%s user=%s", quote(cfg.Host), cfg.Port, quote(cfg.Database), quote(cfg.User))
	if cfg.Password != "" {
		server += " password=" + quote(cfg.Password)
	}
	lines := []string{
		"[databases]",
		"gworker = " + server,
		"gworker_session = " + server + " pool_mode=session",
	}
	for _, d := range drivers {
		lines = append(lines, driverAlias(d.name)+" = "+server)
	}
	ini := strings.Join(append(lines,
		"[pgbouncer]",
		"listen_addr = 127.0.0.1",
		fmt.Sprintf("listen_port = %d", port),
		"unix_socket_dir =",
		"auth_type = any",
		"pool_mode = transaction",
		"max_client_conn = 500",
		"default_pool_size = 20",
		// lib/pq sends extra_float_digits at start-up, which pgbouncer
		// refuses unless told to ignore it.
		"ignore_startup_parameters = extra_float_digits",
		"",
	), "\n")
	iniPath := filepath.Join(dir, "pgbouncer.ini")
	if err := os.WriteFile(iniPath, []byte(ini), 0o644); err != nil {
		return nil, err
	}

	b := &bouncer{
		direct:  direct,
		pooled:  fmt.Sprintf("postgres://gworker@127.0.0.1:%d/gworker?sslmode=disable", port),
		session: fmt.Sprintf("postgres://gworker@127.0.0.1:%d/gworker_session?sslmode=disable", port),
		port:    port,
		exited:  make(chan struct{}),
		log:     &testkit.Buffer{},
		dir:     dir,
	}
	b.cmd = exec.Command(bin, iniPath)
	b.cmd.Dir = dir
	b.cmd.Stdout, b.cmd.Stderr = b.log, b.log
	b.cmd.SysProcAttr = procAttr(cred)
	if err := b.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() {
		_ = b.cmd.Wait()
		close(b.exited)
	}()
	if err := b.waitReady(); err != nil {
		b.stop()
		return nil, err
	}
	return b, nil
}

// driverAlias is the pgbouncer database that the named driver's tests
// reach the server through.
func driverAlias(name string) string { return "gworker_" + strings.ReplaceAll(name, "-", "_") }

// pooledFor is pooled with server connections of the named driver's own.
// Through a transaction pooler a LISTEN stays with the server connection
// it ran on, whichever client uses it next, and so do the notifications it
// brings (a driver's pooler probe may leave one, by design of the check):
// bun's pgdriver fails on a notification it did not ask for, so one
// driver's tests must not get another's server connections.
func (b *bouncer) pooledFor(name string) string {
	return fmt.Sprintf("postgres://gworker@127.0.0.1:%d/%s?sslmode=disable", b.port, driverAlias(name))
}

// waitReady waits until a query through pgbouncer reaches the server.
func (b *bouncer) waitReady() error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		c, err := pgconn.Connect(ctx, b.pooled)
		if err == nil {
			_, err = c.Exec(ctx, "select 1").ReadAll()
			c.Close(ctx)
			if err == nil {
				return nil
			}
		}
		select {
		case <-b.exited:
			return fmt.Errorf("pgbouncer exited at start: %s", b.log.String())
		case <-ctx.Done():
			return fmt.Errorf("pgbouncer did not answer within 15s (%v); its log: %s", err, b.log.String())
		case <-tick.C:
		}
	}
}

func (b *bouncer) stop() {
	select {
	case <-b.exited:
	default:
		_ = b.cmd.Process.Signal(syscall.SIGINT) // pgbouncer's immediate shutdown
		select {
		case <-b.exited:
		case <-time.After(10 * time.Second):
			_ = b.cmd.Process.Kill()
			<-b.exited
		}
	}
	os.RemoveAll(b.dir)
}

// freePort asks the kernel for a free port on 127.0.0.1.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
