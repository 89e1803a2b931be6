package pqdriver

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/lib/pq"

	"github.com/gworker/gworker/core"
)

// notifications is a LISTEN session on a pq.Listener, which owns a
// dedicated connection, reconnects by itself and sends nil on its channel
// after each reconnect.
type notifications struct {
	l       *pq.Listener
	onError func(error)

	closing   chan struct{}
	closeOnce sync.Once

	// first receives the outcome of the first connection attempt.
	firstOnce sync.Once
	first     chan error
}

var _ core.Notifications = (*notifications)(nil)

var errClosed = fmt.Errorf("pqdriver: %w", core.ErrNotificationsClosed)

func listen(ctx context.Context, opts options, channels []string) (core.Notifications, error) {
	n := &notifications{onError: opts.onListenError, closing: make(chan struct{}), first: make(chan error, 1)}
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
