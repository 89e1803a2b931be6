package pqdriver

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lib/pq"

	"github.com/gworker/gworker/core"
)

// Defaults of the listener's reconnect backoff (ReconnectInterval): the
// wait before each attempt to reconnect starts at the minimum and doubles
// up to the maximum.
const (
	DefaultMinReconnectInterval = 100 * time.Millisecond
	DefaultMaxReconnectInterval = 5 * time.Second
)

// Option configures a Driver; pass options to Open or New.
type Option func(*options)

type options struct {
	listenDSN            string
	pollOnly             bool
	minReconnectInterval time.Duration
	maxReconnectInterval time.Duration
	onListenError        func(error)
}

// ListenDSN sets the connection string (URL or key=value) of the dedicated
// connection that Listen opens with pq.Listener. Open defaults it to its
// own connection string. New cannot know it (a *sql.DB does not reveal how
// it connects), so a Driver from New needs ListenDSN or PollOnly to be
// used by a worker. pgxdriver and bundriver have an option of the same
// name, so that switching drivers changes one line.
//
// Behind PgBouncer in transaction pooling mode, point it at PostgreSQL
// itself or at a session-pooling port: a LISTEN needs a session. Listen
// checks that the connection keeps its LISTEN, and otherwise fails with an
// error that says to set this option (wrapping
// core.ErrNotificationsUnsupported: a worker polls meanwhile).
func ListenDSN(dsn string) Option {
	return func(o *options) { o.listenDSN = dsn }
}

// PollOnly makes Listen return an error wrapping
// core.ErrNotificationsUnsupported, so that workers find jobs by polling
// alone (WorkerOptions.PollInterval) and hold no LISTEN connection. Use it
// only where no connection can LISTEN.
func PollOnly() Option {
	return func(o *options) { o.pollOnly = true }
}

// ReconnectInterval bounds the listener's reconnect backoff; zero (or a
// maximum below the minimum) means the defaults.
func ReconnectInterval(minWait, maxWait time.Duration) Option {
	return func(o *options) { o.minReconnectInterval, o.maxReconnectInterval = minWait, maxWait }
}

// OnListenError sets a function called with each error a Notifications
// session recovers from by itself: the loss of its connection and each
// failed attempt to reconnect. Use it to log; it must not block.
func OnListenError(f func(error)) Option {
	return func(o *options) { o.onListenError = f }
}

// Driver runs gworker's statements on a *sql.DB that uses lib/pq. It
// implements core.Database and is safe for concurrent use.
type Driver struct {
	exec  executor
	db    *sql.DB
	ownDB bool
	opts  options
}

var _ core.Database = (*Driver)(nil)

// New returns a Driver over a *sql.DB the caller opened with lib/pq. The
// caller keeps ownership of db: Close does not close it.
//
// To run a worker, give New either ListenDSN, so that the worker wakes up
// on LISTEN/NOTIFY, or PollOnly, to choose polling alone. With neither,
// Listen fails with an error saying so, and a worker logs it at start; a
// process that only adds jobs needs neither.
func New(db *sql.DB, opts ...Option) *Driver {
	d := &Driver{exec: executor{q: db}, db: db}
	for _, o := range opts {
		o(&d.opts)
	}
	if d.opts.minReconnectInterval <= 0 {
		d.opts.minReconnectInterval = DefaultMinReconnectInterval
	}
	if d.opts.maxReconnectInterval < d.opts.minReconnectInterval {
		d.opts.maxReconnectInterval = max(DefaultMaxReconnectInterval, d.opts.minReconnectInterval)
	}
	return d
}

// Open connects to the database at url (a postgres:// URL or a key=value
// string, as lib/pq accepts), checks that it answers and returns a Driver
// that owns the *sql.DB (Close closes it) and listens on url unless
// ListenDSN or PollOnly says otherwise.
//
// Unless url sets binary_parameters itself, Open turns it on: lib/pq then
// sends a statement and its arguments in one round trip (parse, bind and
// execute together) instead of two, which is faster, and which is what
// PgBouncer in transaction pooling mode needs: between two round trips it
// may move the connection to another server, which never saw the unnamed
// statement of the first. A *sql.DB handed to New needs it in its own
// connection string for that.
func Open(ctx context.Context, url string, opts ...Option) (*Driver, error) {
	cfg, err := pq.NewConfig(url)
	if err != nil {
		return nil, fmt.Errorf("pqdriver: %w", err)
	}
	if !strings.Contains(url, "binary_parameters") {
		cfg.BinaryParameters = true
	}
	connector, err := pq.NewConnectorConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("pqdriver: %w", err)
	}
	db := sql.OpenDB(connector)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("pqdriver: connect: %w", err)
	}
	d := New(db, append([]Option{ListenDSN(url)}, opts...)...)
	d.ownDB = true
	return d, nil
}

// DB returns the *sql.DB the Driver runs on, for the application's own
// statements and transactions.
func (d *Driver) DB() *sql.DB { return d.db }

// Close closes the *sql.DB if Open created it, and does nothing if the
// caller supplied it (New). Notifications sessions have their own
// connections and are closed separately.
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

// Listen opens a pq.Listener on the ListenDSN, a connection of its own, and
// runs LISTEN on each channel; it returns once the server acknowledged
// them. See the package documentation for reconnection and Close.
func (d *Driver) Listen(ctx context.Context, channels ...string) (core.Notifications, error) {
	if d.opts.pollOnly {
		return nil, fmt.Errorf("pqdriver: the Driver was made with PollOnly: %w", core.ErrNotificationsUnsupported)
	}
	if d.opts.listenDSN == "" {
		// Not ErrNotificationsUnsupported: a worker would quietly poll.
		return nil, errNoListenDSN
	}
	if len(channels) == 0 {
		return nil, errors.New("pqdriver: Listen needs at least one channel")
	}
	return listen(ctx, d.opts, d.db, channels)
}

// errNoListenDSN is what Listen returns for a Driver that New made with
// neither ListenDSN nor PollOnly.
var errNoListenDSN = errors.New("pqdriver: this Driver cannot LISTEN: pqdriver.New needs pqdriver.ListenDSN(dsn) " +
	"with the connection string of the *sql.DB (or pqdriver.PollOnly() to rely on polling alone); pqdriver.Open sets it")

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
