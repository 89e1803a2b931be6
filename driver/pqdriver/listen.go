package pqdriver

import (
	"context"
	crand "crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/lib/pq"

	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/internal/poolerror"
)

// notifications is a LISTEN session on a pq.Listener, which owns a
// dedicated connection, reconnects by itself and sends nil on its channel
// after each reconnect.
type notifications struct {
	l       *pq.Listener
	dsn     string // the listener's connection string
	onError func(error)

	closing   chan struct{}
	closeOnce sync.Once

	// first receives the outcome of the first connection attempt.
	firstOnce sync.Once
	first     chan error
}

var _ core.Notifications = (*notifications)(nil)

var errClosed = fmt.Errorf("pqdriver: %w", core.ErrNotificationsClosed)

func listen(ctx context.Context, opts options, db Querier, channels []string) (core.Notifications, error) {
	n := &notifications{onError: opts.onListenError, closing: make(chan struct{}), first: make(chan error, 1), dsn: opts.listenDSN}
	n.l = pq.NewListener(opts.listenDSN, opts.minReconnectInterval, opts.maxReconnectInterval, n.event)

	// pq.Listener connects in the background and retries for ever; a
	// first attempt that fails is reported here instead.
	select {
	case err := <-n.first:
		if err != nil {
			n.Close(ctx)
			return nil, fmt.Errorf("pqdriver: listen: %w", err)
		}
	case <-ctx.Done():
		n.Close(ctx)
		return nil, ctx.Err()
	}

	// pq.Listener.Listen returns once the server acknowledged the LISTEN,
	// or blocks while the connection is being re-established.
	done := make(chan error, 1)
	go func() {
		if err := n.probe(ctx, db); err != nil {
			done <- err
			return
		}
		for _, ch := range channels {
			if err := n.l.Listen(ch); err != nil && !errors.Is(err, pq.ErrChannelAlreadyOpen) {
				done <- fmt.Errorf("pqdriver: listen %q: %w", ch, err)
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			n.Close(ctx)
			return nil, err
		}
	case <-ctx.Done():
		n.Close(ctx) // unblocks Listen
		return nil, ctx.Err()
	}
	return n, nil
}

// event is pq.Listener's callback, called from its dispatching goroutine.
func (n *notifications) event(ev pq.ListenerEventType, err error) {
	switch ev {
	case pq.ListenerEventConnected:
		n.firstOnce.Do(func() { n.first <- nil })
	case pq.ListenerEventConnectionAttemptFailed:
		first := false
		n.firstOnce.Do(func() { first = true; n.first <- err })
		if !first {
			n.report(fmt.Errorf("pqdriver: reconnecting listener: %w", err))
		}
	case pq.ListenerEventDisconnected:
		n.report(fmt.Errorf("pqdriver: listening connection lost: %w", err))
	}
}

func (n *notifications) report(err error) {
	select {
	case <-n.closing:
		return
	default:
	}
	if n.onError != nil {
		n.onError(err)
	}
}

// Receive returns the next notification, or Reconnected after pq.Listener
// re-established the connection (it re-runs every LISTEN first). When ctx
// ends it returns ctx.Err(); nothing is lost, since pq.Listener keeps
// reading into its channel.
func (n *notifications) Receive(ctx context.Context) (core.Notification, error) {
	select {
	case <-n.closing:
		return core.Notification{}, errClosed
	default:
	}
	select {
	case m, ok := <-n.l.Notify:
		select {
		case <-n.closing:
			return core.Notification{}, errClosed
		default:
		}
		if !ok {
			return core.Notification{}, errClosed
		}
		if m == nil {
			return core.Notification{Reconnected: true}, nil
		}
		return core.Notification{Channel: m.Channel, Payload: m.Extra}, nil
	case <-ctx.Done():
		return core.Notification{}, ctx.Err()
	case <-n.closing:
		return core.Notification{}, errClosed
	}
}

// Close closes the listener and its connection. A Receive blocked in
// another goroutine returns at once with an error wrapping
// core.ErrNotificationsClosed, as does every later one. It is safe to call
// more than once.
func (n *notifications) Close(context.Context) error {
	var err error
	n.closeOnce.Do(func() {
		close(n.closing)
		err = n.l.Close()
		// pq.Listener's goroutine may be blocked handing over a
		// notification; take them until it closes the channel and exits.
		go func() {
			for range n.l.Notify {
			}
		}()
	})
	return err
}

// sessionCheckTimeout bounds the wait of a statement while another
// connection holds a transaction open (see sessionMoves).
const sessionCheckTimeout = 2 * time.Second

// sessionMoves tells a transaction pooler at dsn without a notification,
// which through such a pooler would reach whichever client has the server
// connection that kept the LISTEN, and might upset it (bun's pgdriver fails
// on a notification it did not ask for). On two connections of its own: a
// statement on the first, then a transaction on the second, then a
// statement on the first again. PostgreSQL, or a pooler that keeps the
// session, runs both of the first's statements on one server process. A
// transaction pooler that hands out the server connection used last first,
// as PgBouncer does, gave the first's to the second, so the first's next
// statement runs on another: moved; the second's transaction running on the
// first's server process says the same. When another client took that
// server connection in between and the first's next statement still ran on
// it, the answer is inconclusive (false), and the caller checks with a
// notification.
func sessionMoves(ctx context.Context, dsn string) (moved bool, err error) {
	connector, err := pq.NewConnector(dsn)
	if err != nil {
		return false, err
	}
	db := sql.OpenDB(connector)
	defer db.Close()
	first, err := db.Conn(ctx)
	if err != nil {
		return false, err
	}
	defer first.Close()
	second, err := db.Conn(ctx)
	if err != nil {
		return false, err
	}
	defer second.Close()
	const backendPID = "select pg_backend_pid()"
	var before, after, held int64
	if err := first.QueryRowContext(ctx, backendPID).Scan(&before); err != nil {
		return false, err
	}
	tx, err := second.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	if err := tx.QueryRowContext(ctx, backendPID).Scan(&held); err != nil {
		return false, err
	}
	qctx, cancel := context.WithTimeout(ctx, sessionCheckTimeout)
	defer cancel()
	if err := first.QueryRowContext(qctx, backendPID).Scan(&after); err != nil {
		if ctx.Err() == nil && qctx.Err() != nil {
			// PostgreSQL or a session pooler never makes the first wait
			// for the second; a transaction pooler with every server
			// connection taken does.
			return false, errors.New("the pooler made a connection wait for a server connection while another " +
				"client held one: it does not keep a session (transaction pooling?), or it is overloaded")
		}
		return false, err
	}
	return after != before || held == before, nil
}

// probeTimeout bounds the wait for the probe notification. Through
// PostgreSQL or a pooler that keeps the session it arrives within
// milliseconds; through one that does not (PgBouncer in transaction
// pooling mode) it never does.
const probeTimeout = 3 * time.Second

// probe checks that the listener's connection keeps a LISTEN, which it
// does not through a pooler that hands each transaction to any server
// connection: first without a notification (sessionMoves) on connections
// of its own to the same place; when that cannot tell, it listens on a
// channel of its own, notifies it through db and waits up to probeTimeout
// for the notification. pq.Listener does not show the connection's
// process id, which would tell a pooler apart at once.
func (n *notifications) probe(ctx context.Context, db Querier) error {
	moved, err := sessionMoves(ctx, n.dsn)
	if err != nil {
		return fmt.Errorf("pqdriver: listen: %w", err)
	}
	if moved {
		return errPooler
	}

	b := make([]byte, 16)
	_, _ = crand.Read(b)
	channel := "gworker:probe:" + hex.EncodeToString(b[:8])
	token := hex.EncodeToString(b[8:])
	if err := n.l.Listen(channel); err != nil {
		return fmt.Errorf("pqdriver: listen: %w", err)
	}
	// No arguments, so lib/pq sends it in one round trip whatever its
	// settings; both values are hexadecimal, nothing to escape.
	notify := "select pg_notify('" + channel + "', '" + token + "')"
	if _, err := db.ExecContext(ctx, notify); err != nil {
		return fmt.Errorf("pqdriver: listen: notify the probe channel: %w", err)
	}
	t := time.NewTimer(probeTimeout)
	defer t.Stop()
	for {
		select {
		case m, ok := <-n.l.Notify:
			if !ok {
				return errClosed
			}
			if m == nil {
				// Reconnected: the notification may have been lost.
				if _, err := db.ExecContext(ctx, notify); err != nil {
					return fmt.Errorf("pqdriver: listen: notify the probe channel: %w", err)
				}
				continue
			}
			if m.Channel == channel && m.Extra == token {
				if err := n.l.Unlisten(channel); err != nil {
					return fmt.Errorf("pqdriver: listen: %w", err)
				}
				return nil
			}
		case <-t.C:
			return errPooler
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// errPooler is Listen's error when the listening connection does not keep
// its LISTEN, whichever check found it out: a statement that moved to
// another server process (sessionMoves, which sends no notification) or a
// probe notification that did not arrive within probeTimeout.
var errPooler = fmt.Errorf("pqdriver: listen: %w", &poolerror.Error{ListenOption: "pqdriver.ListenDSN(url)"})
