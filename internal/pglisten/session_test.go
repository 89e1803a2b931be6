package pglisten

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/internal/pgtest"
	"github.com/gworker/gworker/internal/testkit"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// receiveTimeout bounds every wait for a notification that should come.
const receiveTimeout = 10 * time.Second

func notify(t *testing.T, admin *pgxpool.Pool, channel, payload string) {
	t.Helper()
	if _, err := admin.Exec(t.Context(), `select pg_notify($1, $2)`, channel, payload); err != nil {
		t.Fatal(err)
	}
}

func receive(t *testing.T, n core.Notifications) core.Notification {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), receiveTimeout)
	defer cancel()
	msg, err := n.Receive(ctx)
	if err != nil {
		t.Fatalf("Receive: %v", err)
	}
	return msg
}

// config returns the configuration of a connection to the test server.
func config(t *testing.T) *pgx.ConnConfig {
	t.Helper()
	cfg, err := pgx.ParseConfig(pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// listen opens a session with cfg, closed when the test ends.
func listen(t *testing.T, cfg *pgx.ConnConfig, onError func(error), channels ...string) *Session {
	t.Helper()
	n, err := Open(t.Context(), cfg, channels, Options{Prefix: "test", OnError: onError})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), receiveTimeout)
		defer cancel()
		n.Close(ctx)
	})
	return n
}

// terminate ends the listener's backend from another session, as a
// restarting server or a proxy dropping the connection would.
func terminate(t *testing.T, admin *pgxpool.Pool, n *Session) uint32 {
	t.Helper()
	pid := n.PID()
	if pid == 0 {
		t.Fatal("listener has no connection")
	}
	var ok bool
	if err := admin.QueryRow(t.Context(), `select pg_terminate_backend($1)`, int32(pid)).Scan(&ok); err != nil || !ok {
		t.Fatalf("pg_terminate_backend(%d) = %v, %v", pid, ok, err)
	}
	return pid
}

// eventually polls cond until it holds, failing the test after
// receiveTimeout.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testkit.EventuallyWithin(t, receiveTimeout, what, cond)
}

// errorLog collects what Options.OnListenError reports.
type errorLog struct {
	mu   sync.Mutex
	errs []error
}

func (l *errorLog) add(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errs = append(l.errs, err)
}

func (l *errorLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.errs)
}

// flakyConfig returns a listener configuration whose connection attempts
// fail while fail() says so.
func flakyConfig(t *testing.T, fail func() bool) *pgx.ConnConfig {
	t.Helper()
	cfg := config(t)
	cfg.AfterConnect = func(context.Context, *pgconn.PgConn) error {
		if fail() {
			return errors.New("connection refused by the test")
		}
		return nil
	}
	return cfg
}

func TestListenDelivers(t *testing.T) {
	t.Parallel()
	for _, m := range []struct {
		name string
		mode pgx.QueryExecMode
	}{
		{"default", pgx.QueryExecModeCacheStatement},
		{"simple_protocol", pgx.QueryExecModeSimpleProtocol},
	} {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			admin := pgtest.Pool(t)
			cfg := config(t)
			cfg.DefaultQueryExecMode = m.mode
			a := uniqueName("a_")
			// A name that needs quoting in LISTEN.
			b := "Mixed Case-" + uniqueName("b_")
			n := listen(t, cfg, nil, a, b)

			want := []core.Notification{
				{Channel: a, Payload: "1"},
				{Channel: b, Payload: "2"},
				{Channel: a, Payload: ""},
				{Channel: b, Payload: `it's "ünï" \ {}`},
				{Channel: a, Payload: strings.Repeat("x", 7000)},
			}
			for i, w := range want {
				if i == len(want)-1 {
					notify(t, admin, uniqueName("not-listened_"), "ignored")
				}
				notify(t, admin, w.Channel, w.Payload)
			}
			for i, w := range want {
				if got := receive(t, n); got != w {
					t.Errorf("notification %d: got %+v, want %+v", i, short(got), short(w))
				}
			}
		})
	}
}

func short(n core.Notification) core.Notification {
	if len(n.Payload) > 40 {
		n.Payload = n.Payload[:40] + "..."
	}
	return n
}

// A cancelled Receive leaves the session intact: what arrives meanwhile is
// returned by the next Receive, with no reconnect.
func TestReceiveCancelKeepsConnection(t *testing.T) {
	t.Parallel()
	admin := pgtest.Pool(t)
	ch := uniqueName("c_")
	n := listen(t, config(t), nil, ch)
	pid := n.PID()

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if _, err := n.Receive(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Receive with a deadline: got %v, want context.DeadlineExceeded", err)
	}
	notify(t, admin, ch, "after deadline")
	if got := receive(t, n); got != (core.Notification{Channel: ch, Payload: "after deadline"}) {
		t.Errorf("got %+v", got)
	}

	ctx, cancel = context.WithCancel(t.Context())
	cancel()
	if _, err := n.Receive(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Receive with a cancelled context: got %v, want context.Canceled", err)
	}
	ctx, cancel = context.WithCancel(t.Context())
	time.AfterFunc(20*time.Millisecond, cancel)
	if _, err := n.Receive(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Receive cancelled while waiting: got %v, want context.Canceled", err)
	}
	notify(t, admin, ch, "after cancel")
	if got := receive(t, n); got != (core.Notification{Channel: ch, Payload: "after cancel"}) {
		t.Errorf("got %+v", got)
	}
	if got := n.PID(); got != pid {
		t.Errorf("listener backend changed from %d to %d: the connection was not kept", pid, got)
	}
}

// A configuration that cancels queries with a cancel request (and waits a
// long time before falling back to a deadline), as a pool's may, does not
// slow down a cancelled Receive: the session interrupts its wait by itself.
func TestReceiveCancelWithCancelRequestConfig(t *testing.T) {
	t.Parallel()
	admin := pgtest.Pool(t)
	cfg := config(t)
	cfg.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: c, CancelRequestDelay: time.Minute, DeadlineDelay: time.Minute}
	}
	ch := uniqueName("c_")
	n := listen(t, cfg, nil, ch)
	var err error

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	within(t, 5*time.Second, func() {
		_, err = n.Receive(ctx)
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want context.DeadlineExceeded", err)
	}
	notify(t, admin, ch, "still there")
	if got := receive(t, n); got != (core.Notification{Channel: ch, Payload: "still there"}) {
		t.Errorf("got %+v", got)
	}
}

func TestReconnect(t *testing.T) {
	t.Parallel()
	admin := pgtest.Pool(t)
	var log errorLog
	a, b := uniqueName("a_"), uniqueName("b_")
	n := listen(t, config(t), log.add, a, b)

	old := terminate(t, admin, n)
	if got := receive(t, n); got != (core.Notification{Reconnected: true}) {
		t.Fatalf("after the backend was terminated: got %+v, want Reconnected", got)
	}
	if pid := n.PID(); pid == 0 || pid == old {
		t.Errorf("listener backend is %d after reconnecting, was %d", pid, old)
	}
	if log.len() == 0 {
		t.Error("OnListenError was not told about the lost connection")
	}
	// Every channel is listened to again.
	notify(t, admin, b, "b again")
	notify(t, admin, a, "a again")
	if got := receive(t, n); got != (core.Notification{Channel: b, Payload: "b again"}) {
		t.Errorf("got %+v", got)
	}
	if got := receive(t, n); got != (core.Notification{Channel: a, Payload: "a again"}) {
		t.Errorf("got %+v", got)
	}
}

func TestReconnectRetries(t *testing.T) {
	t.Parallel()
	admin := pgtest.Pool(t)
	const refusals = 3
	var armed atomic.Bool
	var refused atomic.Int32
	cfg := flakyConfig(t, func() bool {
		return armed.Load() && refused.Add(1) <= refusals
	})
	var log errorLog
	ch := uniqueName("c_")
	n := listen(t, cfg, log.add, ch)

	armed.Store(true)
	terminate(t, admin, n)
	if got := receive(t, n); got != (core.Notification{Reconnected: true}) {
		t.Fatalf("got %+v, want Reconnected", got)
	}
	if got := refused.Load(); got != refusals+1 {
		t.Errorf("%d connection attempts, want %d", got, refusals+1)
	}
	// The lost connection, then each refused attempt.
	if got := log.len(); got != 1+refusals {
		t.Errorf("OnListenError called %d times, want %d: %v", got, 1+refusals, log.errs)
	}
	notify(t, admin, ch, "back")
	if got := receive(t, n); got != (core.Notification{Channel: ch, Payload: "back"}) {
		t.Errorf("got %+v", got)
	}
}

// A Receive whose context ends while reconnecting returns ctx.Err(); the
// next one carries on and reports the reconnect.
func TestReceiveCancelledWhileReconnecting(t *testing.T) {
	t.Parallel()
	admin := pgtest.Pool(t)
	var refuse atomic.Bool
	cfg := flakyConfig(t, refuse.Load)
	ch := uniqueName("c_")
	n := listen(t, cfg, nil, ch)

	refuse.Store(true)
	terminate(t, admin, n)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if _, err := n.Receive(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want context.DeadlineExceeded", err)
	}
	refuse.Store(false)
	if got := receive(t, n); got != (core.Notification{Reconnected: true}) {
		t.Fatalf("got %+v, want Reconnected", got)
	}
	notify(t, admin, ch, "back")
	if got := receive(t, n); got != (core.Notification{Channel: ch, Payload: "back"}) {
		t.Errorf("got %+v", got)
	}
}

// closeNow closes n, failing the test if Close does not return promptly
// and cleanly.
func closeNow(t *testing.T, n core.Notifications) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), receiveTimeout)
	defer cancel()
	if err := n.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func TestCloseUnblocksReceive(t *testing.T) {
	t.Parallel()
	admin := pgtest.Pool(t)
	n := listen(t, config(t), nil, uniqueName("c_"))
	pid := n.PID()

	errc := receiveAsync(t, n)
	eventually(t, "Receive to block", func() bool { return len(n.sem) == 1 })
	closeNow(t, n)
	wantClosed(t, errc, "Close did not unblock Receive")

	if _, err := n.Receive(t.Context()); !errors.Is(err, core.ErrNotificationsClosed) {
		t.Errorf("Receive after Close: got %v, want ErrNotificationsClosed", err)
	}
	closeNow(t, n)
	waitBackendGone(t, admin, pid)
}

// receiveAsync calls n.Receive in a goroutine and returns the channel its
// error comes back on.
func receiveAsync(t *testing.T, n core.Notifications) <-chan error {
	errc := make(chan error, 1)
	go func() {
		_, err := n.Receive(t.Context())
		errc <- err
	}()
	return errc
}

// wantClosed waits for the Receive behind errc to return
// ErrNotificationsClosed, failing the test with stuck if it does not
// return within receiveTimeout.
func wantClosed(t *testing.T, errc <-chan error, stuck string) {
	t.Helper()
	select {
	case err := <-errc:
		if !errors.Is(err, core.ErrNotificationsClosed) {
			t.Errorf("blocked Receive: got %v, want ErrNotificationsClosed", err)
		}
	case <-time.After(receiveTimeout):
		t.Fatal(stuck)
	}
}

// waitBackendGone waits for the backend with pid to exit, which shows the
// client closed its connection.
func waitBackendGone(t *testing.T, admin *pgxpool.Pool, pid uint32) {
	t.Helper()
	eventually(t, "the listener's backend to exit", func() bool {
		var alive bool
		err := admin.QueryRow(t.Context(),
			`select exists (select from pg_stat_activity where pid = $1)`, int32(pid)).Scan(&alive)
		return err == nil && !alive
	})
}

// A Close whose context is already done does not wait for a blocked
// Receive; the Receive closes the connection on its way out.
func TestCloseWithDoneContext(t *testing.T) {
	t.Parallel()
	admin := pgtest.Pool(t)
	n := listen(t, config(t), nil, uniqueName("c_"))
	pid := n.PID()

	errc := receiveAsync(t, n)
	eventually(t, "Receive to block", func() bool { return len(n.sem) == 1 })
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := n.Close(ctx); err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("Close: got %v, want nil or context.Canceled", err)
	}
	wantClosed(t, errc, "Close did not unblock Receive")
	waitBackendGone(t, admin, pid)
}

func TestCloseWhileReconnecting(t *testing.T) {
	t.Parallel()
	admin := pgtest.Pool(t)
	var refuse atomic.Bool
	var log errorLog
	cfg := flakyConfig(t, refuse.Load)
	n := listen(t, cfg, log.add, uniqueName("c_"))

	refuse.Store(true)
	terminate(t, admin, n)
	errc := receiveAsync(t, n)
	// The lost connection and at least one refused attempt.
	eventually(t, "a failed reconnect", func() bool { return log.len() >= 2 })
	closeNow(t, n)
	wantClosed(t, errc, "Close did not stop the reconnect loop")
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	if _, err := Open(t.Context(), config(t), nil, Options{Prefix: "test"}); err == nil {
		t.Error("Open with no channels succeeded")
	}
	cfg, err := pgx.ParseConfig("postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=2")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(t.Context(), cfg, []string{"c"}, Options{Prefix: "test"}); err == nil || !strings.HasPrefix(err.Error(), "test: listen: ") {
		t.Errorf("Open to an unreachable server: %v", err)
	}
}

// The session works on a copy: the caller's configuration (a pool's, say)
// keeps the notification handler the session drops from its own.
func TestOpenLeavesTheConfigAlone(t *testing.T) {
	t.Parallel()
	cfg := config(t)
	cfg.OnNotification = func(*pgconn.PgConn, *pgconn.Notification) {}
	listen(t, cfg, nil, uniqueName("c_"))
	if cfg.OnNotification == nil {
		t.Error("Open changed the caller's configuration")
	}
}

// uniqueName returns prefix followed by random hex digits: NOTIFY channels
// are database-wide, so parallel tests must not share them.
func uniqueName(prefix string) string {
	b := make([]byte, 6)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// within runs f in a goroutine and fails the test if it has not returned in
// time, so that a hang shows up as a failure rather than a timeout of the
// whole test binary.
func within(t *testing.T, d time.Duration, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("still running after %v", d)
	}
}
