package pgxdriver

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/internal/pglisten"
)

// Option configures a Driver; pass options to Open or New.
type Option func(*options)

type options struct {
	listenConnConfig *pgx.ConnConfig
	pollOnly         bool
	onListenError    func(error)
}

// ListenConnConfig sets the configuration of the dedicated connection that
// Listen opens; cfg must come from pgx.ParseConfig, and the Driver uses a
// copy. Without it Listen uses a copy of the pool's connection
// configuration.
//
// Set it when the pool goes through a pooler that cannot keep a LISTEN
// (PgBouncer in transaction pooling mode): point it at PostgreSQL itself
// or at a session-pooling port.
func ListenConnConfig(cfg *pgx.ConnConfig) Option {
	return func(o *options) {
		if cfg != nil {
			o.listenConnConfig = cfg.Copy()
		}
	}
}

// PollOnly makes Listen return an error wrapping
// core.ErrNotificationsUnsupported, so that workers find jobs by polling
// alone (WorkerOptions.PollInterval) and hold no LISTEN connection. Use it
// only where no connection can LISTEN.
func PollOnly() Option {
	return func(o *options) { o.pollOnly = true }
}

// OnListenError sets a function called with each error that a
// Notifications session recovers from by itself: the loss of its
// connection and every failed attempt to reconnect. Use it to log; it must
// not block. It is called from the goroutine that calls Receive.
func OnListenError(f func(error)) Option {
	return func(o *options) { o.onListenError = f }
}

// Driver runs gworker's statements on a pgxpool.Pool. It implements
// core.Database and is safe for concurrent use.
type Driver struct {
	exec    executor
	pool    *pgxpool.Pool
	ownPool bool
	opts    options
}

var _ core.Database = (*Driver)(nil)

// New returns a Driver over a pool the caller made. The caller keeps
// ownership of pool: Close does not close it.
func New(pool *pgxpool.Pool, opts ...Option) *Driver {
	d := &Driver{exec: executor{q: pool}, pool: pool}
	for _, o := range opts {
		o(&d.opts)
	}
	return d
}

// Open creates a pool from url (a URL or keyword/value string, as
// pgxpool.ParseConfig accepts), checks that the database answers and returns
// a Driver that owns the pool: Close closes it.
func Open(ctx context.Context, url string, opts ...Option) (*Driver, error) {
	cfg, err := pgxpool.ParseConfig(url)
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
	d := New(pool, opts...)
	d.ownPool = true
	return d, nil
}

// Pool returns the pool the Driver runs on.
func (d *Driver) Pool() *pgxpool.Pool { return d.pool }

// Close closes the pool if the Driver created it (Open), and does nothing
// if the caller supplied it (New). Notifications sessions have their own
// connections and are closed separately. It always returns nil; the error
// is there so that every driver's Close has the same signature.
func (d *Driver) Close() error {
	if d.ownPool {
		d.pool.Close()
	}
	return nil
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
	if d.opts.pollOnly {
		return nil, fmt.Errorf("pgxdriver: the Driver was made with PollOnly: %w", core.ErrNotificationsUnsupported)
	}
	cfg := d.opts.listenConnConfig
	if cfg == nil {
		cfg = d.pool.Config().ConnConfig
	}
	n, err := pglisten.Open(ctx, cfg, channels, pglisten.Options{Prefix: "pgxdriver", OnError: d.opts.onListenError})
	if err != nil {
		return nil, err
	}
	return n, nil
}
