package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	neturl "net/url"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// processStartTimeout bounds the start of the process-wide server; generous
// because the Docker fallback may pull an image first.
const processStartTimeout = 5 * time.Minute

// process holds the one server shared by every test in the test binary.
var process struct {
	mu      sync.Mutex
	started bool // a start was attempted; srv or err holds the outcome
	stopped bool // Main or a signal stopped it; no more starts
	srv     *Server
	err     error
	signals chan os.Signal
}

var errProcessStopped = errors.New("pgtest: the test server was already stopped (used after pgtest.Main returned, or the process got a signal)")

// processServer returns the process-wide server, starting it on first use.
// Concurrent callers wait for the one start; a failed start is not retried,
// so every test reports the same error quickly. tb, which reports the
// start, is nil for an Example.
func processServer(tb testing.TB) (*Server, error) {
	if tb != nil {
		tb.Helper()
	}
	process.mu.Lock()
	defer process.mu.Unlock()
	if process.stopped {
		return nil, errProcessStopped
	}
	if !process.started {
		process.started = true
		ctx, cancel := context.WithTimeout(context.Background(), processStartTimeout)
		defer cancel()
		begin := time.Now()
		// No Logf: the server outlives this test, whose Logf must not be
		// called once it ended.
		process.srv, process.err = Start(ctx, Options{})
		if process.err != nil {
			return nil, process.err
		}
		if tb != nil {
			tb.Logf("pgtest: %s server ready in %v", process.srv.Source(), time.Since(begin).Round(time.Millisecond))
		}
		process.signals = make(chan os.Signal, 1)
		signal.Notify(process.signals, os.Interrupt, syscall.SIGTERM)
		go stopOnSignal(process.signals)
	}
	return process.srv, process.err
}

// stopOnSignal stops the server when the process is interrupted, then lets
// the signal take its usual course.
func stopOnSignal(signals chan os.Signal) {
	sig, ok := <-signals
	if !ok {
		return // Main stopped the server
	}
	_ = stopProcessServer()
	if p, err := os.FindProcess(os.Getpid()); err == nil && p.Signal(sig) == nil {
		return
	}
	os.Exit(2)
}

// stopProcessServer stops the process-wide server if it was started.
func stopProcessServer() error {
	process.mu.Lock()
	defer process.mu.Unlock()
	process.stopped = true
	if process.signals != nil {
		// Stop restores the default action, so stopOnSignal's re-raise ends
		// the process; closing lets stopOnSignal return when Main stops us.
		signal.Stop(process.signals)
		close(process.signals)
		process.signals = nil
	}
	if process.srv == nil {
		return nil
	}
	return process.srv.Stop()
}

// URL returns the connection string (postgres://... URL form, with
// sslmode=disable when local) of the process-wide test server, starting it on
// first use. It fails the test (tb.Fatalf) with a clear message if no
// PostgreSQL can be had. Never skips.
func URL(tb testing.TB) string {
	tb.Helper()
	s, err := processServer(tb)
	if err != nil {
		tb.Fatalf("%v", err)
	}
	return s.URL()
}

// Database creates a database of its own on the process-wide test server,
// starting the server on first use, and returns its URL and a function that
// drops it. It is for code without a testing.TB, such as an Example: a
// package's examples share the one server its tests use (with TestMain
// calling Main), each in a database where its tables meet no one else's.
func Database(ctx context.Context) (url string, drop func(), err error) {
	srv, err := processServer(nil)
	if err != nil {
		return "", nil, err
	}
	u, err := neturl.Parse(srv.URL())
	if err != nil {
		return "", nil, fmt.Errorf("pgtest: the server's URL: %w", err)
	}
	name := "example_" + newSchemaName()
	admin := func(ctx context.Context, sql string) error {
		conn, err := pgx.Connect(ctx, srv.URL())
		if err != nil {
			return err
		}
		defer conn.Close(context.WithoutCancel(ctx))
		_, err = conn.Exec(ctx, sql)
		return err
	}
	if err := admin(ctx, "create database "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", nil, fmt.Errorf("pgtest: create database %s: %w", name, err)
	}
	u.Path = "/" + name
	drop = func() {
		// Best effort, like dropSchema: the server is a throwaway one.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := admin(ctx, "drop database if exists "+pgx.Identifier{name}.Sanitize()+" with (force)"); err != nil {
			slog.Warn("pgtest: drop database", "database", name, "err", err)
		}
	}
	return u.String(), drop, nil
}

// Schema returns a new unique schema name for this test ("t_" and 12 hex
// digits, a valid lowercase identifier) and drops that schema, CASCADE, when
// the test ends. It does not create the schema: migrations do.
func Schema(tb testing.TB) string {
	tb.Helper()
	url := URL(tb)
	name := newSchemaName()
	tb.Cleanup(func() { dropSchema(tb, url, name) })
	return name
}

func newSchemaName() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b) // never fails
	return "t_" + hex.EncodeToString(b)
}

// dropSchema is best effort: a schema left behind costs nothing but space in
// a throwaway server, so a failure is logged rather than failing the test.
func dropSchema(tb testing.TB, url, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		tb.Logf("pgtest: drop schema %s: %v", name, err)
		return
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "drop schema if exists "+pgx.Identifier{name}.Sanitize()+" cascade"); err != nil {
		tb.Logf("pgtest: drop schema %s: %v", name, err)
	}
}

// Pool returns a *pgxpool.Pool on URL(tb), closed at tb.Cleanup.
func Pool(tb testing.TB) *pgxpool.Pool {
	tb.Helper()
	url := URL(tb)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	// pgxpool connects lazily; ping so a broken server fails here, clearly.
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		tb.Fatalf("pgtest: connect to the test server: %v", err)
	}
	tb.Cleanup(pool.Close)
	return pool
}

// Main runs m and then stops the process-wide server. Use it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
//
// A failure to stop is logged (log/slog) and fails an otherwise passing run.
func Main(m *testing.M) int {
	code := m.Run()
	if err := stopProcessServer(); err != nil {
		slog.Error("pgtest: stop the test server", "err", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}
