package pqdriver

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/lib/pq"

	"github.com/gworker/gworker/core"
)

// Defaults of Options.
const (
	// DefaultMinReconnectInterval and DefaultMaxReconnectInterval bound the
	// listener's wait before each attempt to reconnect: it starts at the
	// minimum and doubles up to the maximum.
	DefaultMinReconnectInterval = 100 * time.Millisecond
	DefaultMaxReconnectInterval = 5 * time.Second
)

// Options tunes a Driver. The zero value is ready to use, except that
// Listen needs ListenDSN.
type Options struct {
	// ListenDSN is the connection string (URL or key=value) of the dedicated
	// connection that Listen opens with pq.Listener. A *sql.DB does not
	// reveal how it connects, so New cannot know it; Open sets it to its
	// own connection string. Empty means Listen returns an error wrapping
	// core.ErrNotificationsUnsupported and workers rely on polling.
	//
	// Behind PgBouncer in transaction pooling mode, point it at PostgreSQL
	// itself or at a session-pooling port: a LISTEN needs a session.
	ListenDSN string

	// MinReconnectInterval and MaxReconnectInterval bound the listener's
	// reconnect backoff; zero means the defaults.
	MinReconnectInterval time.Duration
	MaxReconnectInterval time.Duration

	// OnListenError, if set, is called with each error a Notifications
	// session recovers from by itself: the loss of its connection and each
	// failed attempt to reconnect. Use it to log; it must not block.
	OnListenError func(error)
}

// Driver runs gworker's statements on a *sql.DB that uses lib/pq. It
// implements core.Database and is safe for concurrent use.
type Driver struct {
	exec  executor
	db    *sql.DB
	ownDB bool
	opts  Options
}

var _ core.Database = (*Driver)(nil)

// New returns a Driver over db, which must use lib/pq, with default Options:
// Listen is unsupported (workers poll) unless you use NewWithOptions with
// Options.ListenDSN. The caller keeps ownership of db: Close does not close
// it.
func New(db *sql.DB) *Driver { return NewWithOptions(db, Options{}) }

// NewWithOptions returns a Driver over db, which must use lib/pq. The caller
// keeps ownership of db.
func NewWithOptions(db *sql.DB, opts Options) *Driver {
	if opts.MinReconnectInterval <= 0 {
		opts.MinReconnectInterval = DefaultMinReconnectInterval
	}
	if opts.MaxReconnectInterval < opts.MinReconnectInterval {
		opts.MaxReconnectInterval = max(DefaultMaxReconnectInterval, opts.MinReconnectInterval)
	}
	return &Driver{exec: executor{q: db}, db: db, opts: opts}
}

// Open connects to the database at dsn (a postgres:// URL or a key=value
// string, as lib/pq accepts), checks that it answers and returns a Driver
// that owns the *sql.DB (Close closes it) and listens on dsn.
func Open(ctx context.Context, dsn string) (*Driver, error) {
	return OpenWithOptions(ctx, dsn, Options{})
}

// OpenWithOptions is Open with Options; an empty ListenDSN is set to dsn.
func OpenWithOptions(ctx context.Context, dsn string, opts Options) (*Driver, error) {
	connector, err := pq.NewConnector(dsn)
	if err != nil {
		return nil, fmt.Errorf("pqdriver: %w", err)
	}
	db := sql.OpenDB(connector)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("pqdriver: connect: %w", err)
	}
	if opts.ListenDSN == "" {
		opts.ListenDSN = dsn
	}
	d := NewWithOptions(db, opts)
	d.ownDB = true
	return d, nil
}

// DB returns the *sql.DB the Driver runs on, for the application's own
// statements and transactions.
func (d *Driver) DB() *sql.DB { return d.db }

// Close closes the *sql.DB if Open created it, and does nothing otherwise.
// Notifications sessions have their own connections and are closed
// separately.
func (d *Driver) Close() error {
	if d.ownDB {
		return d.db.Close()
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

// Begin starts a transaction on a connection of the pool. As with
// database/sql, the transaction is rolled back if ctx ends before it is
// committed.
func (d *Driver) Begin(ctx context.Context) (core.Transaction, error) {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	return Tx(tx), nil
}

// Listen opens a pq.Listener on Options.ListenDSN, a connection of its own,
// and runs LISTEN on each channel; it returns once the server acknowledged
// them. See the package documentation for reconnection and Close.
func (d *Driver) Listen(ctx context.Context, channels ...string) (core.Notifications, error) {
	if d.opts.ListenDSN == "" {
		return nil, fmt.Errorf("pqdriver: no Options.ListenDSN to open a LISTEN connection with (Open sets it): %w",
			core.ErrNotificationsUnsupported)
	}
	if len(channels) == 0 {
		return nil, errors.New("pqdriver: Listen needs at least one channel")
	}
	return listen(ctx, d.opts, channels)
}

// Tx wraps a transaction the caller already holds, so that core's statements
// (adding a job, say) commit or roll back together with the caller's own
// writes. Commit and Rollback delegate to tx, but core never calls them on a
// transaction handed in this way: the caller finishes it as usual.
func Tx(tx *sql.Tx) core.Transaction {
	return transaction{executor: executor{q: tx}, tx: tx}
}

// Querier is the part of database/sql that the adapter runs statements
// through. *sql.DB, *sql.Conn and *sql.Tx implement it.
type Querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// Conn returns a core.Executor that runs statements on q, for example a
// *sql.Conn the caller holds, so that core's statements share the caller's
// session.
func Conn(q Querier) core.Executor { return executor{q: q} }

type transaction struct {
	executor
	tx *sql.Tx
}

// Commit and Rollback ignore ctx: database/sql ties a transaction to the
// context it was begun with.
func (t transaction) Commit(context.Context) error   { return t.tx.Commit() }
func (t transaction) Rollback(context.Context) error { return t.tx.Rollback() }
