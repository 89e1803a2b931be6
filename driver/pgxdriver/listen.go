package pgxdriver

import (
	"context"
	"fmt"
	"math/rand/v2"
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

// notifications is a LISTEN session on a dedicated connection.
//
// Only one goroutine at a time works on the connection: sem is a one-slot
// semaphore held by Receive and by Close while they use conn. It is a
// channel rather than a mutex so that a waiting Receive still honours its
// context and Close.
type notifications struct {
	cfg       *pgx.ConnConfig
	listenSQL string
	onError   func(error)

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

var _ core.Notifications = (*notifications)(nil)

func newNotifications(cfg *pgx.ConnConfig, listenSQL string, onError func(error)) *notifications {
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
	return &notifications{
		cfg:       cfg,
		listenSQL: listenSQL,
		onError:   onError,
		closing:   closing,
		close:     cancel,
		sem:       make(chan struct{}, 1),
	}
}

// Receive waits for the next notification. See the package documentation.
func (n *notifications) Receive(ctx context.Context) (core.Notification, error) {
	if n.closing.Err() != nil {
		return core.Notification{}, errClosed
	}
	select {
	case n.sem <- struct{}{}:
	case <-ctx.Done():
		return core.Notification{}, ctx.Err()
	case <-n.closing.Done():
		return core.Notification{}, errClosed
	}
	defer n.release()
	if n.closing.Err() != nil {
		return core.Notification{}, errClosed
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
		n.report(fmt.Errorf("pgxdriver: listening connection lost: %w", err))
		n.drop(wctx)
	}
}

// Close ends the session: a blocked Receive returns an error wrapping
// core.ErrNotificationsClosed, as does every later Receive. It is safe to
// call more than once and concurrently with Receive.
func (n *notifications) Close(ctx context.Context) error {
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
func (n *notifications) release() {
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
// holds sem (or is Listen, before the session is shared).
func (n *notifications) connect(ctx context.Context) error {
	conn, err := pgx.ConnectConfig(ctx, n.cfg)
	if err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, n.listenSQL); err != nil {
		closeCtx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		conn.Close(closeCtx)
		cancel()
		return err
	}
	n.conn = conn
	n.connectedAt = time.Now()
	n.pid.Store(conn.PgConn().PID())
	return nil
}

// reconnect retries connect with backoff until it succeeds or ctx ends.
func (n *notifications) reconnect(ctx context.Context) error {
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
		n.report(fmt.Errorf("pgxdriver: reconnecting listener: %w", err))
	}
}

// drop forgets a broken connection so that the next Receive reconnects.
// Closing it is a courtesy to the server, cut short (a hard close) when
// ctx ends.
func (n *notifications) drop(ctx context.Context) {
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

func (n *notifications) disconnect(ctx context.Context) error {
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
func (n *notifications) stopError(ctx context.Context, err error) error {
	if n.closing.Err() != nil {
		return errClosed
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

func (n *notifications) report(err error) {
	if n.onError != nil {
		n.onError(err)
	}
}

var errClosed = fmt.Errorf("pgxdriver: %w", core.ErrNotificationsClosed)
