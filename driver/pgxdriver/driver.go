package pgxdriver

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gworker/gworker/core"
)

// Options tunes a Driver. The zero value is ready to use.
type Options struct {
	// ListenConnConfig is the configuration of the dedicated connection that
	// Listen opens. It must come from pgx.ParseConfig. Nil means a copy of
	// the pool's connection configuration. The Driver uses a copy.
	//
	// Set it when the pool goes through a pooler that cannot keep a LISTEN
	// (PgBouncer in transaction pooling mode): point it at PostgreSQL itself
	// or at a session-pooling port.
	ListenConnConfig *pgx.ConnConfig

	// OnListenError, if set, is called with each error that a Notifications
	// session recovers from by itself: the loss of its connection and every
	// failed attempt to reconnect. Use it to log; it must not block. It is
	// called from the goroutine that calls Receive.
	OnListenError func(error)
}

// Driver runs gworker's statements on a pgxpool.Pool. It implements
// core.Database and is safe for concurrent use.
type Driver struct {
	exec    executor
	pool    *pgxpool.Pool
	ownPool bool
	opts    Options
}

var _ core.Database = (*Driver)(nil)

// New returns a Driver over pool with default Options. The caller keeps
// ownership of pool: Close does not close it.
func New(pool *pgxpool.Pool) *Driver {
	return NewWithOptions(pool, Options{})
}

// NewWithOptions returns a Driver over pool. The caller keeps ownership of
// pool: Close does not close it.
func NewWithOptions(pool *pgxpool.Pool, opts Options) *Driver {
	return &Driver{exec: executor{q: pool}, pool: pool, opts: opts}
}

// Open creates a pool from connString (a URL or keyword/value string, as
// pgxpool.ParseConfig accepts), checks that the database answers and returns
// a Driver that owns the pool: Close closes it.
func Open(ctx context.Context, connString string) (*Driver, error) {
	cfg, err := pgxpool.ParseConfig(connString)
	if err != nil {
		return nil, fmt.Errorf("pgxdriver: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgxdriver: %w", err)
	}
	// pgxpool connects lazily; ping so that a wrong address or password
	// fails here rather than at the first job.
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("pgxdriver: connect: %w", err)
	}
	d := New(pool)
	d.ownPool = true
	return d, nil
}

// Pool returns the pool the Driver runs on.
func (d *Driver) Pool() *pgxpool.Pool { return d.pool }

// Close closes the pool if the Driver created it (Open), and does nothing
// if the caller supplied it (New, NewWithOptions). Notifications sessions
// have their own connections and are closed separately.
func (d *Driver) Close() {
	if d.ownPool {
		d.pool.Close()
	}
}

// Exec runs a statement on a pooled connection and returns the number of
// rows it affected.
func (d *Driver) Exec(ctx context.Context, sql string, args ...any) (int64, error) {
	return d.exec.Exec(ctx, sql, args...)
}

// Query runs a statement on a pooled connection. The connection returns to
// the pool when the Rows are closed.
func (d *Driver) Query(ctx context.Context, sql string, args ...any) (core.Rows, error) {
	return d.exec.Query(ctx, sql, args...)
}

// Begin starts a transaction on a connection from the pool.
func (d *Driver) Begin(ctx context.Context) (core.Transaction, error) {
	tx, err := d.pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return Tx(tx), nil
}

// Listen opens a dedicated connection, not taken from the pool so it never
// starves it, and runs LISTEN on each channel. See the package documentation
// for how the session behaves on cancellation, connection loss and Close.
func (d *Driver) Listen(ctx context.Context, channels ...string) (core.Notifications, error) {
	if len(channels) == 0 {
		return nil, errors.New("pgxdriver: Listen needs at least one channel")
	}
	var cfg *pgx.ConnConfig
	if d.opts.ListenConnConfig != nil {
		cfg = d.opts.ListenConnConfig.Copy()
	} else {
		cfg = d.pool.Config().ConnConfig.Copy()
	}
	n := newNotifications(cfg, listenSQL(channels), d.opts.OnListenError)
	if err := n.connect(ctx); err != nil {
		n.Close(context.Background())
		return nil, fmt.Errorf("pgxdriver: listen: %w", err)
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
