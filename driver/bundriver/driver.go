package bundriver

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/driver/pgdriver"

	"github.com/gworker/gworker/core"
)

// Option configures a Driver; pass options to Open or New.
type Option func(*options)

type options struct {
	listenDSN     string
	pollOnly      bool
	onListenError func(error)
}

// ListenDSN sets a connection string (URL or key=value) for a listener
// connection made with pgx. Set it to listen somewhere else than the pool
// connects to (past PgBouncer in transaction pooling mode, which cannot
// keep a LISTEN), or when bun runs on a database/sql driver other than
// bun's pgdriver or pgx's stdlib, whose settings the adapter cannot take.
// pgxdriver and pqdriver have an option of the same name, so that
// switching drivers changes one line.
//
// A listener that finds that its connection does not keep its LISTEN
// fails with an error that says to set this option (wrapping
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

// OnListenError sets a function called with each error a Notifications
// session recovers from by itself: the loss of its connection and each
// failed attempt to reconnect. Use it to log; it must not block.
func OnListenError(f func(error)) Option {
	return func(o *options) { o.onListenError = f }
}

// Driver runs gworker's statements on a *bun.DB with PostgreSQL. It
// implements core.Database and is safe for concurrent use.
type Driver struct {
	db    *bun.DB
	sqldb *sql.DB
	pgd   bool // bun runs on its pgdriver
	ownDB bool
	opts  options
}

var _ core.Database = (*Driver)(nil)

// New returns a Driver over a *bun.DB the caller made. Statements go to
// the *sql.DB under it (db.DB), never through bun's query formatter. The
// caller keeps ownership of db: Close does not close it.
func New(db *bun.DB, opts ...Option) *Driver {
	d := &Driver{db: db, sqldb: db.DB, pgd: onPgdriver(db)}
	for _, o := range opts {
		o(&d.opts)
	}
	return d
}

// onPgdriver reports whether db runs on bun's pgdriver.
func onPgdriver(db *bun.DB) bool {
	if db == nil || db.DB == nil {
		return false
	}
	_, ok := db.DB.Driver().(pgdriver.Driver)
	return ok
}

// Open connects to the database at url (a postgres:// URL, as bun's
// pgdriver accepts) with bun on pgdriver, checks that it answers and
// returns a Driver that owns the *bun.DB: Close closes it.
func Open(ctx context.Context, url string, opts ...Option) (*Driver, error) {
	connector, err := newConnector(url)
	if err != nil {
		return nil, err
	}
	db := bun.NewDB(sql.OpenDB(connector), pgdialect.New())
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("bundriver: connect: %w", wrapErr(err))
	}
	d := New(db, opts...)
	d.ownDB = true
	return d, nil
}

// newConnector returns pgdriver's connector for url; pgdriver panics on a
// connection string it cannot parse, and this returns that as an error.
func newConnector(url string) (c *pgdriver.Connector, err error) {
	defer func() {
		if r := recover(); r != nil {
			c, err = nil, fmt.Errorf("bundriver: %v", r)
		}
	}()
	return pgdriver.NewConnector(pgdriver.WithDSN(url)), nil
}

// DB returns the bun.DB the Driver runs on.
func (d *Driver) DB() *bun.DB { return d.db }

// Close closes the *bun.DB if Open created it, and does nothing if the
// caller supplied it (New). Notifications sessions have their own
// connections and are closed separately.
func (d *Driver) Close() error {
	if d.ownDB {
		return d.db.Close()
	}
	return nil
}

// Exec runs a statement and returns the number of rows it affected.
func (d *Driver) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	query, args, err := prepare(d.pgd, query, args)
	if err != nil {
		return 0, err
	}
	if !d.pgd || ctx.Done() == nil {
		return execOn(ctx, d.sqldb, query, args)
	}
	c, t, err := d.conn(ctx)
	if err != nil {
		return 0, wrapErr(err)
	}
	w := watch(ctx, t)
	n, err := execOn(ctx, c, query, args)
	release(c, w.stop())
	return n, err
}

// Query runs a statement that returns rows. With pgdriver, the connection
// is held until the Rows are closed.
func (d *Driver) Query(ctx context.Context, query string, args ...any) (core.Rows, error) {
	query, args, err := prepare(d.pgd, query, args)
	if err != nil {
		return nil, err
	}
	if !d.pgd || ctx.Done() == nil {
		return queryOn(ctx, d.sqldb, query, args, nil)
	}
	c, t, err := d.conn(ctx)
	if err != nil {
		return nil, wrapErr(err)
	}
	w := watch(ctx, t)
	rows, err := queryOn(ctx, c, query, args, func() { release(c, w.stop()) })
	if err != nil {
		release(c, w.stop())
		return nil, err
	}
	return rows, nil
}

// Begin starts a transaction on a connection of the pool. As with
// database/sql, the transaction is rolled back if ctx ends before it is
// committed.
func (d *Driver) Begin(ctx context.Context) (core.Transaction, error) {
	if !d.pgd {
		tx, err := d.sqldb.BeginTx(ctx, nil)
		if err != nil {
			return nil, wrapErr(err)
		}
		return &transaction{pgd: d.pgd, tx: tx}, nil
	}
	c, t, err := d.conn(ctx)
	if err != nil {
		return nil, wrapErr(err)
	}
	tx, err := c.BeginTx(ctx, nil)
	if err != nil {
		release(c, false)
		return nil, wrapErr(err)
	}
	return &transaction{pgd: d.pgd, tx: tx, conn: c, target: t}, nil
}

// Tx wraps a transaction the caller already holds, so that core's
// statements (adding a job, say) commit or roll back together with the
// caller's own writes. Commit and Rollback delegate to tx, but core never
// calls them on a transaction handed in this way: the caller finishes it as
// usual.
//
// With pgdriver, a statement on such a transaction honours its context's
// deadline but not its cancellation (the adapter cannot reach the
// connection under a *sql.Tx to send a cancel request).
func Tx(tx bun.Tx) core.Transaction {
	// bun.Tx keeps its bun.DB to itself; a query built on it reveals it.
	return &transaction{pgd: onPgdriver(tx.NewRaw("").DB()), tx: tx.Tx, caller: true}
}

// prepare turns the arguments into what the driver under bun takes: with
// pgdriver, literals in the statement text; otherwise arguments that any
// PostgreSQL database/sql driver sends as text.
func prepare(pgd bool, query string, args []any) (string, []any, error) {
	if pgd {
		q, err := interpolate(query, args)
		return q, nil, err
	}
	return query, convertArgs(args), nil
}

// conn takes a connection from the pool for one statement or transaction.
func (d *Driver) conn(ctx context.Context) (*sql.Conn, *target, error) {
	c, err := d.sqldb.Conn(ctx)
	if err != nil {
		return nil, nil, err
	}
	return c, targetOf(c), nil
}

// release gives a connection back to the pool, or closes it if a cancel
// request may have been sent to its backend.
func release(c *sql.Conn, cancelled bool) {
	if cancelled {
		discard(c)
		return
	}
	_ = c.Close()
}

// transaction is a Transaction begun by the Driver or handed in by the
// caller.
type transaction struct {
	pgd    bool // on bun's pgdriver
	tx     *sql.Tx
	caller bool // the caller's: no connection of ours to release

	// With pgdriver, for transactions the Driver began.
	conn      *sql.Conn
	target    *target
	cancelled atomic.Bool
	done      atomic.Bool
}

func (t *transaction) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	query, args, err := prepare(t.pgd, query, args)
	if err != nil {
		return 0, err
	}
	w := watch(ctx, t.target)
	n, err := execOn(ctx, t.tx, query, args)
	if w.stop() {
		t.cancelled.Store(true)
	}
	return n, err
}

func (t *transaction) Query(ctx context.Context, query string, args ...any) (core.Rows, error) {
	query, args, err := prepare(t.pgd, query, args)
	if err != nil {
		return nil, err
	}
	w := watch(ctx, t.target)
	stop := func() {
		if w.stop() {
			t.cancelled.Store(true)
		}
	}
	rows, err := queryOn(ctx, t.tx, query, args, stop)
	if err != nil {
		stop()
		return nil, err
	}
	return rows, nil
}

// Commit and Rollback ignore ctx: database/sql ties a transaction to the
// context it was begun with.
func (t *transaction) Commit(context.Context) error {
	err := t.tx.Commit()
	t.finish()
	return wrapErr(err)
}

// Rollback of a transaction whose connection broke returns nil: closing
// the connection rolled it back. (pgdriver closes the connection after some
// errors, such as a statement in an aborted transaction.)
func (t *transaction) Rollback(context.Context) error {
	err := t.tx.Rollback()
	t.finish()
	if errors.Is(err, driver.ErrBadConn) {
		return nil
	}
	return wrapErr(err)
}

func (t *transaction) finish() {
	if t.conn != nil && t.done.CompareAndSwap(false, true) {
		release(t.conn, t.cancelled.Load())
	}
}
