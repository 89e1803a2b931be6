package pglisten

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"

	"github.com/gworker/gworker/core"
)

// Reconnect backoff: the wait before each attempt starts at minBackoff and
// doubles up to maxBackoff; each wait is drawn at random from its upper half
// so that many workers losing the same server do not reconnect in step.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// closeTimeout bounds the polite goodbye (a Terminate message) when a
// connection is closed outside the caller's context.
const closeTimeout = 5 * time.Second

// Options configures a Session.
type Options struct {
	// Prefix starts every error message, naming the driver the user chose
	// ("pgxdriver", "bundriver").
	Prefix string

	// OnError, if set, is called with each error the session recovers
	// from by itself: the loss of its connection and every failed attempt
	// to reconnect. It is called from the goroutine that calls Receive and
	// must not block.
	OnError func(error)

	// ListenOption names, as a user writes it, the driver's option that
	// gives a direct connection for LISTEN ("pgxdriver.ListenDSN(url)"):
	// the fix that the error for a connection through a transaction
	// pooler suggests.
	ListenOption string
}

// Session is a LISTEN session on a dedicated connection. It implements
// core.Notifications.
//
// Only one goroutine at a time works on the connection: sem is a one-slot
// semaphore held by Receive and by Close while they use conn. It is a
// channel rather than a mutex so that a waiting Receive still honours its
// context and Close.
type Session struct {
	cfg       *pgx.ConnConfig
	listenSQL string
	prefix    string
	onError   func(error)
	// listenOption is Options.ListenOption.
	listenOption string
	errClosed    error

	// closing is done once Close has been called; Receive watches it so a
	// blocked Receive returns at once.
	closing context.Context
	close   context.CancelFunc

	sem chan struct{}

	// Guarded by sem.
	conn        *pgx.Conn // nil while disconnected
	connectedAt time.Time
	delay       time.Duration // the last backoff wait; 0 after a reset

	pid atomic.Uint32 // backend PID of the current connection, for tests
}

var _ core.Notifications = (*Session)(nil)

// Open connects with a copy of cfg, which must come from pgx.ParseConfig
// (or be a live connection's Config), runs LISTEN on every channel and
// returns the session. See the package documentation for how it behaves.
func Open(ctx context.Context, cfg *pgx.ConnConfig, channels []string, o Options) (*Session, error) {
	if len(channels) == 0 {
		return nil, errors.New(o.Prefix + ": Listen needs at least one channel")
	}
	n := newSession(cfg.Copy(), listenSQL(channels), o)
	if err := n.connect(ctx); err != nil {
		n.Close(context.Background())
		return nil, fmt.Errorf("%s: listen: %w", o.Prefix, err)
	}
	return n, nil
}

// listenSQL builds one statement list so that (re)subscribing to every
// channel is a single round trip.
func listenSQL(channels []string) string {
	var b strings.Builder
	for _, ch := range channels {
		b.WriteString("LISTEN ")
		b.WriteString(pgx.Identifier{ch}.Sanitize())
		b.WriteString(";")
	}
	return b.String()
}

func newSession(cfg *pgx.ConnConfig, listenSQL string, o Options) *Session {
	// The default handler interrupts a blocked read by setting a deadline,
	// which leaves the connection usable: pgx does not close a connection
	// on a timeout, and a partly read message is resumed on the next read.
	// A pool may be configured to send a cancel request instead, which is
	// pointless for an idle listener and delays Receive's return, so this
	// connection always uses the deadline handler.
	// A config copied from a live connection may carry its OnNotification
	// handler, which would consume every message before Receive sees it.
	cfg.OnNotification = nil
	cfg.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.DeadlineContextWatcherHandler{Conn: c.Conn()}
	}
	closing, cancel := context.WithCancel(context.Background())
	return &Session{
		cfg:          cfg,
		listenSQL:    listenSQL,
		prefix:       o.Prefix,
		onError:      o.OnError,
		listenOption: o.ListenOption,
		errClosed:    fmt.Errorf("%s: %w", o.Prefix, core.ErrNotificationsClosed),
		closing:      closing,
		close:        cancel,
		sem:          make(chan struct{}, 1),
	}
}

// Receive waits for the next notification. See the package documentation.
func (n *Session) Receive(ctx context.Context) (core.Notification, error) {
	if n.closing.Err() != nil {
		return core.Notification{}, n.errClosed
	}
	select {
	case n.sem <- struct{}{}:
	case <-ctx.Done():
		return core.Notification{}, ctx.Err()
	case <-n.closing.Done():
		return core.Notification{}, n.errClosed
	}
	defer n.release()
	if n.closing.Err() != nil {
		return core.Notification{}, n.errClosed
	}

	// wctx ends with the caller's ctx or with Close, whichever comes first.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(n.closing, cancel)
	defer stop()

	for {
		if n.conn == nil {
			if err := n.reconnect(wctx); err != nil {
				return core.Notification{}, n.stopError(ctx, err)
			}
			return core.Notification{Reconnected: true}, nil
		}

		msg, err := n.conn.WaitForNotification(wctx)
		if msg != nil {
			// pgx can hand back a notification it had buffered together
			// with an error; deliver it, and let the next call meet the
			// error again.
			return core.Notification{Channel: msg.Channel, Payload: msg.Payload}, nil
		}
		if wctx.Err() != nil {
			// Interrupted by the caller or Close, not a network failure.
			// The deadline handler keeps the connection open, so the next
			// Receive carries on where this one stopped and nothing is
			// lost. Should pgx have closed it all the same, drop it: the
			// next Receive reconnects and reports Reconnected.
			if n.conn.IsClosed() {
				n.drop(wctx)
			}
			return core.Notification{}, n.stopError(ctx, err)
		}
		n.report(fmt.Errorf("%s: listening connection lost: %w", n.prefix, err))
		n.drop(wctx)
	}
}

// Close ends the session: a blocked Receive returns an error wrapping
// core.ErrNotificationsClosed, as does every later Receive. It is safe to
// call more than once and concurrently with Receive.
func (n *Session) Close(ctx context.Context) error {
	n.close()
	select {
	case n.sem <- struct{}{}:
	case <-ctx.Done():
		select {
		case n.sem <- struct{}{}:
		default:
			// A Receive is still on its way out; it closes the
			// connection itself when it sees that closing is done.
			return ctx.Err()
		}
	}
	defer func() { <-n.sem }()
	return n.disconnect(ctx)
}

// release gives up the semaphore after Receive. If Close was called
// meanwhile it closes the connection, because Close may have given up
// waiting for it.
func (n *Session) release() {
	<-n.sem
	if n.closing.Err() == nil {
		return
	}
	select {
	case n.sem <- struct{}{}:
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		n.disconnect(ctx)
		cancel()
		<-n.sem
	default:
		// Close (or another Receive, which will do the same) has it.
	}
}

// connect opens the connection and subscribes to every channel. The caller
// holds sem (or is Open, before the session is shared).
func (n *Session) connect(ctx context.Context) error {
	conn, err := pgx.ConnectConfig(ctx, n.cfg)
	if err != nil {
		return err
	}
	fail := func(err error) error {
		closeCtx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		conn.Close(closeCtx)
		cancel()
		return err
	}
	// A pooler between here and PostgreSQL may hand every transaction to
	// another server connection, and a LISTEN then stays behind on one
	// of them: make sure this session keeps it before relying on it.
	pid, pooled, err := BackendPID(ctx, conn.PgConn())
	if err != nil {
		return fail(err)
	}
	if pooled {
		if err := n.probe(ctx, conn, pid); err != nil {
			return fail(err)
		}
	}
	if _, err := conn.Exec(ctx, n.listenSQL); err != nil {
		return fail(err)
	}
	n.conn = conn
	n.connectedAt = time.Now()
	n.pid.Store(pid)
	return nil
}

// reconnect retries connect with backoff until it succeeds or ctx ends.
func (n *Session) reconnect(ctx context.Context) error {
	for {
		n.delay = min(max(2*n.delay, minBackoff), maxBackoff)
		wait := n.delay/2 + rand.N(n.delay/2+1)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		err := n.connect(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		n.report(fmt.Errorf("%s: reconnecting listener: %w", n.prefix, err))
	}
}

// drop forgets a broken connection so that the next Receive reconnects.
// Closing it is a courtesy to the server, cut short (a hard close) when
// ctx ends.
func (n *Session) drop(ctx context.Context) {
	// A connection that stayed up longer than the longest wait resets the
	// backoff; one that died soon after connecting (a flapping server or
	// proxy) keeps it growing, so a failure loop never spins.
	if time.Since(n.connectedAt) > maxBackoff {
		n.delay = 0
	}
	ctx, cancel := context.WithTimeout(ctx, closeTimeout)
	defer cancel()
	n.disconnect(ctx)
}

func (n *Session) disconnect(ctx context.Context) error {
	if n.conn == nil {
		return nil
	}
	err := n.conn.Close(ctx)
	n.conn = nil
	n.pid.Store(0)
	return err
}

// stopError is what Receive returns when it was interrupted: the closed
// error after Close, otherwise the caller's ctx.Err(), as core expects.
func (n *Session) stopError(ctx context.Context, err error) error {
	if n.closing.Err() != nil {
		return n.errClosed
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

func (n *Session) report(err error) {
	if n.onError != nil {
		n.onError(err)
	}
}

// PID returns the backend process id of the current connection, or 0 while
// there is none, so that tests can terminate it.
func (n *Session) PID() uint32 { return n.pid.Load() }
