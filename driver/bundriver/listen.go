package bundriver

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/driver/pgdriver"

	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/internal/pglisten"
	"github.com/gworker/gworker/internal/poolerror"
)

var errClosed = fmt.Errorf("bundriver: %w", core.ErrNotificationsClosed)

// errPooler is Listen's error (after "bundriver: listen: ") when the
// pings that confirm a pgdriver listener's LISTEN were sent but none came
// back.
var errPooler = &poolerror.Error{
	Reason:       fmt.Sprintf("no notification reached it within %v, as happens when %s", confirmTimeout, poolerror.Cause),
	ListenOption: "bundriver.ListenDSN(url)",
}

// Listen opens a dedicated listening session and runs LISTEN on each
// channel; it returns once the session listens. With ListenDSN it listens
// with pgx there; otherwise on bun's pgdriver with pgdriver's Listener, and
// on pgx's stdlib with pgx and the settings of the pool's connections. See
// the package documentation for reconnection and Close.
func (d *Driver) Listen(ctx context.Context, channels ...string) (core.Notifications, error) {
	switch {
	case d.opts.pollOnly:
		return nil, fmt.Errorf("bundriver: the Driver was made with PollOnly: %w", core.ErrNotificationsUnsupported)
	case len(channels) == 0:
		return nil, errors.New("bundriver: Listen needs at least one channel")
	case d.opts.listenDSN != "":
		cfg, err := pgx.ParseConfig(d.opts.listenDSN)
		if err != nil {
			return nil, fmt.Errorf("bundriver: ListenDSN: %w", err)
		}
		return d.listenPgx(ctx, cfg, channels)
	case d.pgd:
		pooled, err := d.throughPooler(ctx)
		if err != nil {
			return nil, fmt.Errorf("bundriver: listen: %w", err)
		}
		if pooled {
			return nil, errPgdriverPooled
		}
		return d.listenPgdriver(ctx, channels)
	case !d.onStdlib():
		return nil, d.errNoListener()
	}
	cfg, err := d.stdlibConfig(ctx)
	if err != nil {
		return nil, err
	}
	return d.listenPgx(ctx, cfg, channels)
}

// throughPooler reports whether the pool's pgdriver connections go through
// a connection pooler: the process id the connection was given at start-up
// is not the server's. It reports false when it cannot read the former.
func (d *Driver) throughPooler(ctx context.Context) (bool, error) {
	c, t, err := d.conn(ctx)
	if err != nil {
		return false, wrapErr(err)
	}
	defer release(c, false)
	if t == nil || !t.hasKey {
		return false, nil
	}
	var pid int64
	if err := c.QueryRowContext(ctx, "select pg_backend_pid()").Scan(&pid); err != nil {
		return false, wrapErr(err)
	}
	return pid != t.pid, nil
}

// errPgdriverPooled is Listen's error on pgdriver behind a connection
// pooler. pgdriver's Listener cannot tell a pooler that keeps its LISTEN
// (session pooling) from one that does not (transaction pooling) without
// notifying through the pool, and through a transaction pooler those
// notifications reach other clients' connections, which pgdriver fails on
// ("unexpected message 'A'"). pgx's listener, through ListenDSN, checks
// with a single notification of its own.
var errPgdriverPooled = fmt.Errorf("bundriver: listen: %w", &poolerror.Error{
	Reason: "the bun.DB goes through a connection pooler, and through PgBouncer in transaction pooling mode a LISTEN is lost " +
		"(bun's pgdriver listener cannot check which mode without disturbing the pool's other connections)",
	ListenOption: "bundriver.ListenDSN(url)",
})

// listenPgx listens with pgx on a connection of its own.
func (d *Driver) listenPgx(ctx context.Context, cfg *pgx.ConnConfig, channels []string) (core.Notifications, error) {
	n, err := pglisten.Open(ctx, cfg, channels, pglisten.Options{Prefix: "bundriver", OnError: d.opts.onListenError,
		ListenOption: "bundriver.ListenDSN(url)"})
	if err != nil {
		return nil, err
	}
	return n, nil
}

// stdlibConfig takes the connection settings of a pool connection when bun
// runs on pgx's stdlib.
func (d *Driver) stdlibConfig(ctx context.Context) (*pgx.ConnConfig, error) {
	c, err := d.sqldb.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("bundriver: listen: %w", err)
	}
	defer c.Close()
	var cfg *pgx.ConnConfig
	_ = c.Raw(func(dc any) error {
		if sc, ok := dc.(*stdlib.Conn); ok {
			cfg = sc.Conn().Config()
			// It carries the pool connection's notification handler,
			// which would take the listener's notifications.
			cfg.OnNotification = nil
		}
		return nil
	})
	if cfg == nil {
		return nil, d.errNoListener()
	}
	return cfg, nil
}

func (d *Driver) onStdlib() bool {
	_, ok := d.sqldb.Driver().(*stdlib.Driver)
	return ok
}

// errNoListener is Listen's error on a bun.DB whose connection settings the
// adapter cannot take. It does not wrap core.ErrNotificationsUnsupported:
// a worker would then quietly poll.
func (d *Driver) errNoListener() error {
	return fmt.Errorf("bundriver: cannot LISTEN on a bun.DB that runs on %T: give bundriver.New the connection string "+
		"with bundriver.ListenDSN(dsn) (or bundriver.PollOnly() to rely on polling alone)", d.sqldb.Driver())
}

// Reconnect backoff of the pgdriver listener: the wait before each attempt
// starts at minBackoff and doubles up to maxBackoff, drawn from its upper
// half.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
	// confirmTimeout bounds the wait for a (re)connected listener to show
	// that its LISTENs are in place.
	confirmTimeout = 10 * time.Second
	// maxQueued bounds notifications waiting for Receive; past it they are
	// dropped and Receive reports Reconnected, so the worker polls.
	maxQueued = 100000
	// pingInterval spaces the pings that confirm a listener's LISTENs.
	pingInterval = 20 * time.Millisecond
)

// pgdSession is a LISTEN session on bun's pgdriver.Listener.
//
// pgdriver.Listener needs care: it sends LISTEN without waiting for the
// server's answer, is not safe for concurrent use, ignores a context's
// cancellation, and reconnects silently. So one goroutine owns it and reads
// notifications into a queue that Receive takes from (Receive's context
// then never touches the connection). After each (re)connect the session
// confirms its LISTENs with a ping on a private channel (see connect). Any
// error gives a new pgdriver.Listener, and a Reconnected notification.
type pgdSession struct {
	d        *Driver
	channels []string // the private ping channel last
	ping     string
	onError  func(error)

	ctx    context.Context // ends with Close
	cancel context.CancelFunc
	done   chan struct{} // the reading goroutine exited

	mu     sync.Mutex
	ln     *pgdriver.Listener
	queue  []core.Notification
	closed bool
	wake   chan struct{} // one slot: the queue grew
}

func (d *Driver) listenPgdriver(ctx context.Context, channels []string) (core.Notifications, error) {
	for _, ch := range channels {
		// pgdriver.Listener quotes channel names with Go's strconv.Quote.
		if strings.ContainsAny(ch, `"\`) || strings.IndexFunc(ch, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
			return nil, fmt.Errorf("bundriver: pgdriver's listener cannot LISTEN on %q (quotes, backslashes and control characters); listen with pgx through ListenDSN", ch)
		}
	}
	b := make([]byte, 8)
	_, _ = crand.Read(b)
	s := &pgdSession{d: d, ping: "gworker:ping:" + hex.EncodeToString(b), onError: d.opts.onListenError,
		done: make(chan struct{}), wake: make(chan struct{}, 1)}
	s.channels = append(append([]string(nil), channels...), s.ping)
	s.ctx, s.cancel = context.WithCancel(context.Background())

	ln, err := s.connect(ctx)
	if err != nil {
		s.cancel()
		return nil, fmt.Errorf("bundriver: listen: %w", err)
	}
	s.ln = ln
	go s.run(ln)
	return s, nil
}

// newListener calls pgdriver.NewListener, which panics when the bun.DB's
// pgdriver.Driver has no connector (database/sql always gives it one, but a
// hand-made wrapper might not).
func newListener(db *bun.DB) (ln *pgdriver.Listener, err error) {
	defer func() {
		if recover() != nil {
			err = errors.New("bundriver: pgdriver.NewListener cannot find the bun.DB's pgdriver connector; " +
				"open it with sql.OpenDB(pgdriver.NewConnector(...)), or give bundriver.New ListenDSN to listen with pgx")
		}
	}()
	return pgdriver.NewListener(db), nil
}

// connect opens a listener, LISTENs and waits until the LISTENs are in
// place. Notifications that arrive meanwhile are queued.
//
// pgdriver writes LISTEN without reading the answer, so the session
// LISTENs on its private ping channel last and notifies it through the
// pool until a ping comes back: the server runs a connection's statements
// in order, so every LISTEN before it is then in place.
func (s *pgdSession) connect(ctx context.Context) (*pgdriver.Listener, error) {
	ln, err := newListener(s.d.db)
	if err != nil {
		return nil, err
	}
	// pgdriver ignores cancellation; closing the listener ends its reads.
	stop := context.AfterFunc(ctx, func() { _ = ln.Close() })
	defer stop()
	fail := func(err error) (*pgdriver.Listener, error) {
		_ = ln.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	if err := ln.Listen(ctx, s.channels...); err != nil {
		return fail(err)
	}
	b := make([]byte, 8)
	_, _ = crand.Read(b)
	token := hex.EncodeToString(b)
	confirmed := make(chan struct{})
	defer close(confirmed)
	var sent atomic.Int64
	go s.pingUntil(ctx, token, confirmed, &sent)
	deadline := time.Now().Add(confirmTimeout)
	for {
		// When the server took pings and none came back by the deadline,
		// the listener's connection does not keep its LISTEN: a pooler
		// stands between it and PostgreSQL.
		left := time.Until(deadline)
		if left <= 0 {
			if sent.Load() > 0 {
				return fail(errPooler)
			}
			return fail(errors.New("bundriver: the listener's LISTEN was not confirmed in time"))
		}
		ch, payload, err := ln.ReceiveTimeout(ctx, left)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && time.Until(deadline) <= 0 && sent.Load() > 0 {
				return fail(errPooler)
			}
			return fail(err)
		}
		if ch == s.ping {
			if payload != token {
				continue
			}
			// LISTEN once more on the last channel of the caller's, so
			// that pg_stat_activity shows this connection's last statement
			// as a LISTEN on a channel people know (it changes nothing on
			// the server).
			if err := ln.Listen(ctx, s.channels[len(s.channels)-2]); err != nil {
				return fail(err)
			}
			return ln, nil
		}
		s.push(core.Notification{Channel: ch, Payload: payload})
	}
}

// pingUntil notifies the ping channel every pingInterval until done is
// closed or ctx ends, counting in sent the notifications the server took.
func (s *pgdSession) pingUntil(ctx context.Context, token string, done <-chan struct{}, sent *atomic.Int64) {
	t := time.NewTicker(pingInterval)
	defer t.Stop()
	for {
		if _, err := s.d.Exec(ctx, "select pg_notify($1, $2)", s.ping, token); err != nil {
			if ctx.Err() == nil {
				s.report(fmt.Errorf("bundriver: ping the listener: %w", err))
			}
		} else {
			sent.Add(1)
		}
		select {
		case <-done:
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// run reads notifications until Close, reconnecting after errors.
func (s *pgdSession) run(ln *pgdriver.Listener) {
	defer close(s.done)
	delay := time.Duration(0)
	connectedAt := time.Now()
	for {
		ch, payload, err := ln.Receive(context.Background())
		if s.ctx.Err() != nil {
			_ = ln.Close()
			return
		}
		if err == nil {
			if ch != s.ping {
				s.push(core.Notification{Channel: ch, Payload: payload})
			}
			continue
		}
		s.report(fmt.Errorf("bundriver: listening connection lost: %w", err))
		_ = ln.Close()
		if time.Since(connectedAt) > maxBackoff {
			delay = 0
		}
		for {
			delay = min(max(2*delay, minBackoff), maxBackoff)
			t := time.NewTimer(delay/2 + rand.N(delay/2+1))
			select {
			case <-s.ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			ln, err = s.connect(s.ctx)
			if err == nil {
				break
			}
			if s.ctx.Err() != nil {
				return
			}
			s.report(fmt.Errorf("bundriver: reconnecting listener: %w", err))
		}
		connectedAt = time.Now()
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = ln.Close()
			return
		}
		s.ln = ln
		s.mu.Unlock()
		s.push(core.Notification{Reconnected: true})
	}
}

func (s *pgdSession) push(n core.Notification) {
	s.mu.Lock()
	if len(s.queue) >= maxQueued {
		s.queue = append(s.queue[:0], core.Notification{Reconnected: true})
		s.report(errors.New("bundriver: too many notifications waiting for Receive; dropped them"))
	}
	s.queue = append(s.queue, n)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *pgdSession) report(err error) {
	if s.onError != nil && s.ctx.Err() == nil {
		s.onError(err)
	}
}

// Receive returns the next queued notification, waiting for one until ctx
// ends (it returns ctx.Err(); nothing is lost) or the session is closed.
func (s *pgdSession) Receive(ctx context.Context) (core.Notification, error) {
	for {
		if err := ctx.Err(); err != nil {
			return core.Notification{}, err
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return core.Notification{}, errClosed
		}
		if len(s.queue) > 0 {
			n := s.queue[0]
			s.queue = s.queue[1:]
			s.mu.Unlock()
			return n, nil
		}
		s.mu.Unlock()
		select {
		case <-s.wake:
		case <-ctx.Done():
			return core.Notification{}, ctx.Err()
		case <-s.ctx.Done():
			return core.Notification{}, errClosed
		}
	}
}

// Close ends the session and waits, within ctx, for its connection to be
// released. A Receive blocked in another goroutine returns at once with an
// error wrapping core.ErrNotificationsClosed, as does every later one.
func (s *pgdSession) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	ln := s.ln
	s.mu.Unlock()
	s.cancel()
	// pgdriver.Listener.Close may wait for a reconnect in progress.
	go func() { _ = ln.Close() }()
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
