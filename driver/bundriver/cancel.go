package bundriver

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/binary"
	"io"
	"net"
	"reflect"
	"sync"
	"time"

	"github.com/uptrace/bun/driver/pgdriver"
)

// bun's pgdriver honours a context's deadline (as a socket deadline) but not
// its cancellation: a cancelled statement would run on, on the server and
// in the caller. So the adapter runs each statement on a connection it
// holds (a *sql.Conn), and when the context is cancelled it sends
// PostgreSQL a cancel request for that connection's backend, as libpq, pgx
// and lib/pq do; if the statement has not returned cancelGrace later, it
// sets the socket's deadline to now, which ends any read at once. A
// connection on which this happened is never reused: a late cancel request
// could otherwise hit the next statement.

// cancelGrace is how long a cancelled statement may take to return after
// the cancel request before its connection is cut.
const cancelGrace = 2 * time.Second

// cancelDialTimeout bounds sending the cancel request.
const cancelDialTimeout = 5 * time.Second

// target is what cancelling a statement on one pgdriver connection needs.
// It is read inside sql.Conn.Raw; afterwards only the net.Conn's deadline
// methods are used, which are safe for concurrent use.
type target struct {
	netConn net.Conn
	pid     int64
	key     int64
	hasKey  bool
}

// newTarget reads what it needs from a pgdriver connection. pgdriver does
// not export the backend's process id and secret key; they are read with
// reflect, and if a future pgdriver renames them, cancellation falls back
// to cutting the connection at once.
func newTarget(c *pgdriver.Conn) *target {
	t := &target{netConn: c.Conn()}
	v := reflect.ValueOf(c).Elem()
	pid, key := v.FieldByName("processID"), v.FieldByName("secretKey")
	if pid.IsValid() && key.IsValid() && pid.CanInt() && key.CanInt() {
		t.pid, t.key, t.hasKey = pid.Int(), key.Int(), true
	}
	return t
}

// targetOf returns the target of the connection c holds, or nil when it is
// not a pgdriver connection.
func targetOf(c *sql.Conn) *target {
	var t *target
	_ = c.Raw(func(dc any) error {
		if pc, ok := dc.(*pgdriver.Conn); ok {
			t = newTarget(pc)
		}
		return nil
	})
	return t
}

// discard closes the connection c holds instead of returning it to the
// pool.
func discard(c *sql.Conn) {
	_ = c.Raw(func(any) error { return driver.ErrBadConn })
	_ = c.Close()
}

// cancelRequest asks the server to cancel whatever the backend runs. It
// dials the address the connection is connected to; the server answers by
// closing the connection once it has signalled the backend.
func (t *target) cancelRequest() {
	addr := t.netConn.RemoteAddr()
	conn, err := net.DialTimeout(addr.Network(), addr.String(), cancelDialTimeout)
	if err != nil {
		return
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(cancelDialTimeout))
	msg := make([]byte, 16)
	binary.BigEndian.PutUint32(msg[0:], 16)
	binary.BigEndian.PutUint32(msg[4:], 80877102) // CancelRequest code
	binary.BigEndian.PutUint32(msg[8:], uint32(t.pid))
	binary.BigEndian.PutUint32(msg[12:], uint32(t.key))
	if _, err := conn.Write(msg); err != nil {
		return
	}
	_, _ = io.Copy(io.Discard, conn)
}

// watcher cancels one statement when its context is cancelled.
type watcher struct {
	t         *target
	stopAfter func() bool
	mu        sync.Mutex
	stopped   bool
	stopCh    chan struct{}
	fired     chan struct{} // closed when fire returned
}

// watch starts watching ctx for the statement about to run on t. A nil
// watcher (no target, or a context that cannot be cancelled) does nothing.
func watch(ctx context.Context, t *target) *watcher {
	if t == nil || ctx.Done() == nil {
		return nil
	}
	w := &watcher{t: t, stopCh: make(chan struct{}), fired: make(chan struct{})}
	w.stopAfter = context.AfterFunc(ctx, w.fire)
	return w
}

func (w *watcher) fire() {
	defer close(w.fired)
	w.mu.Lock()
	stopped := w.stopped
	w.mu.Unlock()
	if stopped {
		return
	}
	grace := time.Duration(0)
	if w.t.hasKey {
		w.t.cancelRequest()
		grace = cancelGrace
	}
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-timer.C:
		w.mu.Lock()
		if !w.stopped {
			_ = w.t.netConn.SetDeadline(time.Now())
		}
		w.mu.Unlock()
	case <-w.stopCh:
	}
}

// stop ends the watch once the statement has returned. It reports whether
// the watcher fired, in which case the connection must be discarded.
func (w *watcher) stop() (fired bool) {
	if w == nil || w.stopAfter() {
		return false
	}
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
	close(w.stopCh)
	<-w.fired
	return true
}
