package pgxdriver_test

import (
	"context"
	"errors"
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
	"github.com/gworker/gworker/driver/pgxdriver"
	"github.com/gworker/gworker/internal/pgtest"
)

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

func listen(t *testing.T, d *pgxdriver.Driver, channels ...string) core.Notifications {
	t.Helper()
	n, err := d.Listen(t.Context(), channels...)
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
func terminate(t *testing.T, admin *pgxpool.Pool, n core.Notifications) uint32 {
	t.Helper()
	pid := pgxdriver.ListenerPID(n)
	if pid == 0 {
		t.Fatal("listener has no connection")
	}
	var ok bool
	if err := admin.QueryRow(t.Context(), `select pg_terminate_backend($1)`, int32(pid)).Scan(&ok); err != nil || !ok {
		t.Fatalf("pg_terminate_backend(%d) = %v, %v", pid, ok, err)
	}
	return pid
}

// eventually polls cond until it holds, failing the test after a while.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(receiveTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
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
	cfg, err := pgx.ParseConfig(pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
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
	for _, m := range execModes[:2] {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			admin := pgtest.Pool(t)
			d, _ := newDriver(t, m.mode)
			a := uniqueName("a_")
			// A name that needs quoting in LISTEN.
			b := "Mixed Case-" + uniqueName("b_")
			n := listen(t, d, a, b)

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
	d, _ := newDriver(t, pgx.QueryExecModeCacheStatement)
	ch := uniqueName("c_")
	n := listen(t, d, ch)
	pid := pgxdriver.ListenerPID(n)

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
	if got := pgxdriver.ListenerPID(n); got != pid {
		t.Errorf("listener backend changed from %d to %d: the connection was not kept", pid, got)
	}
}

// A pool configured to cancel queries with a cancel request (and to wait a
// long time before falling back to a deadline) does not slow down a
// cancelled Receive: the listener interrupts its wait by itself.
func TestReceiveCancelWithCancelRequestPool(t *testing.T) {
	t.Parallel()
	admin := pgtest.Pool(t)
	cfg, err := pgxpool.ParseConfig(pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: c, CancelRequestDelay: time.Minute, DeadlineDelay: time.Minute}
	}
	pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	ch := uniqueName("c_")
	n := listen(t, pgxdriver.New(pool), ch)

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
	pool := newPool(t, pgx.QueryExecModeCacheStatement)
	d := pgxdriver.NewWithOptions(pool, pgxdriver.Options{OnListenError: log.add})
	a, b := uniqueName("a_"), uniqueName("b_")
	n := listen(t, d, a, b)

	old := terminate(t, admin, n)
	if got := receive(t, n); got != (core.Notification{Reconnected: true}) {
		t.Fatalf("after the backend was terminated: got %+v, want Reconnected", got)
	}
	if pid := pgxdriver.ListenerPID(n); pid == 0 || pid == old {
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
	pool := newPool(t, pgx.QueryExecModeCacheStatement)
	d := pgxdriver.NewWithOptions(pool, pgxdriver.Options{ListenConnConfig: cfg, OnListenError: log.add})
	ch := uniqueName("c_")
	n := listen(t, d, ch)

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
	pool := newPool(t, pgx.QueryExecModeCacheStatement)
	d := pgxdriver.NewWithOptions(pool, pgxdriver.Options{ListenConnConfig: cfg})
	ch := uniqueName("c_")
	n := listen(t, d, ch)

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
	d, _ := newDriver(t, pgx.QueryExecModeCacheStatement)
	n := listen(t, d, uniqueName("c_"))
	pid := pgxdriver.ListenerPID(n)

	errc := make(chan error, 1)
	go func() {
		_, err := n.Receive(t.Context())
		errc <- err
	}()
	eventually(t, "Receive to block", func() bool { return pgxdriver.Busy(n) })
	closeNow(t, n)
	select {
	case err := <-errc:
		if !errors.Is(err, core.ErrNotificationsClosed) {
			t.Errorf("blocked Receive: got %v, want ErrNotificationsClosed", err)
		}
	case <-time.After(receiveTimeout):
		t.Fatal("Close did not unblock Receive")
	}

	if _, err := n.Receive(t.Context()); !errors.Is(err, core.ErrNotificationsClosed) {
		t.Errorf("Receive after Close: got %v, want ErrNotificationsClosed", err)
	}
	closeNow(t, n)
	waitBackendGone(t, admin, pid)
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
	d, _ := newDriver(t, pgx.QueryExecModeCacheStatement)
	n := listen(t, d, uniqueName("c_"))
	pid := pgxdriver.ListenerPID(n)

	errc := make(chan error, 1)
	go func() {
		_, err := n.Receive(t.Context())
		errc <- err
	}()
	eventually(t, "Receive to block", func() bool { return pgxdriver.Busy(n) })
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := n.Close(ctx); err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("Close: got %v, want nil or context.Canceled", err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, core.ErrNotificationsClosed) {
			t.Errorf("blocked Receive: got %v, want ErrNotificationsClosed", err)
		}
	case <-time.After(receiveTimeout):
		t.Fatal("Close did not unblock Receive")
	}
	waitBackendGone(t, admin, pid)
}

func TestCloseWhileReconnecting(t *testing.T) {
	t.Parallel()
	admin := pgtest.Pool(t)
	var refuse atomic.Bool
	var log errorLog
	cfg := flakyConfig(t, refuse.Load)
	pool := newPool(t, pgx.QueryExecModeCacheStatement)
	d := pgxdriver.NewWithOptions(pool, pgxdriver.Options{ListenConnConfig: cfg, OnListenError: log.add})
	n := listen(t, d, uniqueName("c_"))

	refuse.Store(true)
	terminate(t, admin, n)
	errc := make(chan error, 1)
	go func() {
		_, err := n.Receive(t.Context())
		errc <- err
	}()
	// The lost connection and at least one refused attempt.
	eventually(t, "a failed reconnect", func() bool { return log.len() >= 2 })
	closeNow(t, n)
	select {
	case err := <-errc:
		if !errors.Is(err, core.ErrNotificationsClosed) {
			t.Errorf("got %v, want ErrNotificationsClosed", err)
		}
	case <-time.After(receiveTimeout):
		t.Fatal("Close did not stop the reconnect loop")
	}
}

// The listener has a connection of its own: it works with the pool
// exhausted, and Options.ListenConnConfig chooses where it goes.
func TestListenConnection(t *testing.T) {
	t.Parallel()
	admin := pgtest.Pool(t)
	cfg, err := pgx.ParseConfig(pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	appName := uniqueName("listener_")
	cfg.RuntimeParams["application_name"] = appName

	pool := newPool(t, pgx.QueryExecModeCacheStatement)
	held := make([]interface{ Release() }, 0, pool.Config().MaxConns)
	for range pool.Config().MaxConns {
		c, err := pool.Acquire(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	defer func() {
		for _, c := range held {
			c.Release()
		}
	}()

	d := pgxdriver.NewWithOptions(pool, pgxdriver.Options{ListenConnConfig: cfg})
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	n, err := d.Listen(ctx, uniqueName("c_"))
	if err != nil {
		t.Fatalf("Listen with the pool exhausted: %v", err)
	}
	defer n.Close(context.Background())

	var got string
	err = admin.QueryRow(t.Context(),
		`select application_name from pg_stat_activity where pid = $1`, int32(pgxdriver.ListenerPID(n))).Scan(&got)
	if err != nil || got != appName {
		t.Errorf("listener's application_name = %q, %v; want %q", got, err, appName)
	}
}

func TestListenErrors(t *testing.T) {
	t.Parallel()
	d, _ := newDriver(t, pgx.QueryExecModeCacheStatement)
	if _, err := d.Listen(t.Context()); err == nil {
		t.Error("Listen with no channels succeeded")
	}

	cfg, err := pgx.ParseConfig("postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=2")
	if err != nil {
		t.Fatal(err)
	}
	d = pgxdriver.NewWithOptions(d.Pool(), pgxdriver.Options{ListenConnConfig: cfg})
	if _, err := d.Listen(t.Context(), "c"); err == nil {
		t.Error("Listen to an unreachable server succeeded")
	}
}
