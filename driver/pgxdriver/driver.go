package pgxdriver

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/internal/pglisten"
)

// Option configures a Driver; pass options to Open or New.
type Option func(*options)

type options struct {
	listenConnConfig *pgx.ConnConfig
	listenDSN        string
	pollOnly         bool
	onListenError    func(error)
}

// ListenDSN sets the connection string (a URL or keyword/value string, as
// pgx.ParseConfig accepts) of the dedicated connection that Listen opens,
// instead of the pool's own settings. pqdriver and bundriver have an option
// of the same name, so that switching drivers changes one line.
//
// Set it when the pool goes through a pooler that cannot keep a LISTEN
// (PgBouncer in transaction pooling mode): point it at PostgreSQL itself
// or at a session-pooling port. Listen detects a pooler that does not keep
// its LISTEN and then fails with an error that says to set this option
// (wrapping core.ErrNotificationsUnsupported: a worker polls meanwhile).
// Open checks that dsn parses; New leaves that to Listen.
func ListenDSN(dsn string) Option {
	return func(o *options) { o.listenDSN, o.listenConnConfig = dsn, nil }
}

// ListenConnConfig sets the configuration of the dedicated connection that
// Listen opens; cfg must come from pgx.ParseConfig, and the Driver uses a
// copy. Without it (or ListenDSN, the same from a connection string)
// Listen uses a copy of the pool's connection configuration.
//
// Set it when the pool goes through a pooler that cannot keep a LISTEN
// (PgBouncer in transaction pooling mode): point it at PostgreSQL itself
// or at a session-pooling port.
func ListenConnConfig(cfg *pgx.ConnConfig) Option {
	return func(o *options) {
		if cfg != nil {
			o.listenConnConfig, o.listenDSN = cfg.Copy(), ""
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

	// mode is what the Driver found out about a connection pooler between
	// the pool and PostgreSQL: modeUnknown until it looked, modeKeep to
	// run statements in the pool's own query exec mode, or the
	// pgx.QueryExecMode to run them in instead (see poolerMode).
	mode atomic.Int32
}

// States of Driver.mode besides a pgx.QueryExecMode.
const (
	modeUnknown int32 = 0
	modeKeep    int32 = -1
)

var _ core.Database = (*Driver)(nil)

// New returns a Driver over a pool the caller made. The caller keeps
// ownership of pool: Close does not close it.
//
// The first statement the Driver runs first checks whether the pool goes
// through a connection pooler such as PgBouncer, as Open does (see the
// package documentation).
func New(pool *pgxpool.Pool, opts ...Option) *Driver {
	d := &Driver{exec: executor{q: pool}, pool: pool}
	for _, o := range opts {
		o(&d.opts)
	}
	return d
}

// Open creates a pool from url (a URL or keyword/value string, as
// pgxpool.ParseConfig accepts), checks that the database answers and returns
// a Driver that owns the pool: Close closes it. It also checks whether the
// pool goes through a connection pooler such as PgBouncer (see the package
// documentation).
func Open(ctx context.Context, url string, opts ...Option) (*Driver, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("pgxdriver: %w", err)
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if o.listenDSN != "" {
		if _, err := pgx.ParseConfig(o.listenDSN); err != nil {
			return nil, fmt.Errorf("pgxdriver: ListenDSN: %w", err)
		}
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
	if err := d.detectPooler(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("pgxdriver: connect: %w", err)
	}
	return d, nil
}

// detectPooler finds out whether the pool's connections go through a
// connection pooler, and sets mode.
func (d *Driver) detectPooler(ctx context.Context) error {
	c, err := d.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer c.Release()
	_, pooled, err := pglisten.BackendPID(ctx, c.Conn().PgConn())
	if err != nil {
		return err
	}
	d.mode.Store(poolerMode(d.pool.Config().ConnConfig, pooled))
	return nil
}

// poolerMode picks the query exec mode of gworker's statements on
// connections with configuration cfg. pgx's default mode prepares each
// statement under a name, once per connection, which a pooler that gives
// each transaction any server connection (PgBouncer in transaction
// pooling mode) breaks: the next transaction may land on a server
// connection that never saw the statement. Behind a pooler the Driver runs
// its statements in a mode that prepares nothing by name: cache_describe,
// which still takes one round trip per statement, or exec when the
// configuration turned the description cache off. A mode the configuration
// chose itself (default_query_exec_mode) is kept.
func poolerMode(cfg *pgx.ConnConfig, pooled bool) int32 {
	switch {
	case !pooled || cfg.DefaultQueryExecMode != pgx.QueryExecModeCacheStatement:
		return modeKeep
	case cfg.DescriptionCacheCapacity > 0:
		return int32(pgx.QueryExecModeCacheDescribe)
	default:
		return int32(pgx.QueryExecModeExec)
	}
}

// executor returns the executor for the pool, in the query exec mode that
// suits it. A Driver from New checks for a pooler on its first use; if
// that fails (the database is down, say) it runs the statement as the pool
// would and checks again next time.
func (d *Driver) executor(ctx context.Context) executor {
	m := d.mode.Load()
	if m == modeUnknown {
		if d.detectPooler(ctx) != nil {
			return d.exec
		}
		m = d.mode.Load()
	}
	if m == modeKeep {
		return d.exec
	}
	return executor{q: d.exec.q, mode: pgx.QueryExecMode(m)}
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
	return d.executor(ctx).Exec(ctx, sql, args...)
}

// Query runs a statement on a pooled connection. The connection returns to
// the pool when the Rows are closed.
func (d *Driver) Query(ctx context.Context, sql string, args ...any) (core.Rows, error) {
	return d.executor(ctx).Query(ctx, sql, args...)
}

// Begin starts a transaction on a connection from the pool.
func (d *Driver) Begin(ctx context.Context) (core.Transaction, error) {
	e := d.executor(ctx)
	tx, err := d.pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return transaction{executor: executor{q: tx, mode: e.mode}, tx: tx}, nil
}

// Listen opens a dedicated connection, not taken from the pool so it never
// starves it, and runs LISTEN on each channel. See the package documentation
// for how the session behaves on cancellation, connection loss and Close.
func (d *Driver) Listen(ctx context.Context, channels ...string) (core.Notifications, error) {
	if d.opts.pollOnly {
		return nil, fmt.Errorf("pgxdriver: the Driver was made with PollOnly: %w", core.ErrNotificationsUnsupported)
	}
	cfg := d.opts.listenConnConfig
	if d.opts.listenDSN != "" {
		var err error
		if cfg, err = pgx.ParseConfig(d.opts.listenDSN); err != nil {
			return nil, fmt.Errorf("pgxdriver: ListenDSN: %w", err)
		}
	}
	if cfg == nil {
		cfg = d.pool.Config().ConnConfig
	}
	n, err := pglisten.Open(ctx, cfg, channels, pglisten.Options{Prefix: "pgxdriver", OnError: d.opts.onListenError,
		ListenOption: "pgxdriver.ListenDSN(url)"})
	if err != nil {
		return nil, err
	}
	return n, nil
}
