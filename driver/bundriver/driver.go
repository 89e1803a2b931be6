package bundriver

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"sync/atomic"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/driver/pgdriver"

	"github.com/gworker/gworker/core"
)

// ListenMode says how Listen opens its dedicated session.
type ListenMode int

const (
	// ListenAuto picks by what the bun.DB runs on: Options.ListenDSN set
	// means ListenPgx there; bun's pgdriver means ListenPgdriver; pgx's
	// database/sql driver (stdlib) means ListenPgx with the pool's own
	// connection settings; anything else means ListenNone.
	ListenAuto ListenMode = iota
	// ListenPgdriver uses bun's pgdriver.Listener with the bun.DB's own
	// connector settings; the bun.DB must run on pgdriver.
	ListenPgdriver
	// ListenPgx opens a pgx connection, on Options.ListenDSN or, when the
	// bun.DB runs on pgx's stdlib, with the settings of its connections.
	ListenPgx
	// ListenNone: Listen returns an error wrapping
	// core.ErrNotificationsUnsupported, and workers poll.
	ListenNone
)

// Options tunes a Driver. The zero value is ready to use.
type Options struct {
	// Listen selects the listener; see ListenMode. The zero value is
	// ListenAuto.
	Listen ListenMode

	// ListenDSN is a connection string (URL or key=value) for a listener
	// connection made with pgx. Set it to listen somewhere else than the
	// pool connects to — past PgBouncer in transaction pooling mode,
	// which cannot keep a LISTEN — or when bun runs on a driver the
	// adapter cannot take settings from.
	ListenDSN string

	// OnListenError, if set, is called with each error a Notifications
	// session recovers from by itself: the loss of its connection and each
	// failed attempt to reconnect. Use it to log; it must not block.
	OnListenError func(error)
}

// Driver runs gworker's statements on a *bun.DB with PostgreSQL. It
// implements core.Database and is safe for concurrent use.
type Driver struct {
	db    *bun.DB
	sqldb *sql.DB
	pgd   bool // bun runs on its pgdriver
	opts  Options
}

var _ core.Database = (*Driver)(nil)

// New returns a Driver over db with default Options. Statements go to the
// *sql.DB under db (db.DB), never through bun's query formatter.
func New(db *bun.DB) *Driver { return NewWithOptions(db, Options{}) }

// NewWithOptions returns a Driver over db.
func NewWithOptions(db *bun.DB, opts Options) *Driver {
	_, pgd := db.DB.Driver().(pgdriver.Driver)
	return &Driver{db: db, sqldb: db.DB, pgd: pgd, opts: opts}
}

// DB returns the bun.DB the Driver runs on.
func (d *Driver) DB() *bun.DB { return d.db }

// Exec runs a statement and returns the number of rows it affected.
func (d *Driver) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	query, args, err := d.prepare(query, args)
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
	query, args, err := d.prepare(query, args)
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
		return &transaction{d: d, tx: tx}, nil
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
	return &transaction{d: d, tx: tx, conn: c, target: t}, nil
}

// Tx wraps a transaction the caller already holds, begun on the Driver's
// bun.DB, so that core's statements (adding a job, say) commit or roll back
// together with the caller's own writes. Commit and Rollback delegate to
// tx, but core never calls them on a transaction handed in this way: the
// caller finishes it as usual.
//
// With pgdriver, a statement on such a transaction honours its context's
// deadline but not its cancellation (the adapter cannot reach the
// connection under a *sql.Tx to send a cancel request).
func (d *Driver) Tx(tx bun.Tx) core.Transaction {
	return &transaction{d: d, tx: tx.Tx, caller: true}
}

// prepare turns the arguments into what the driver under bun takes: with
// pgdriver, literals in the statement text; otherwise arguments that any
// PostgreSQL database/sql driver sends as text.
func (d *Driver) prepare(query string, args []any) (string, []any, error) {
	if d.pgd {
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
	d      *Driver
	tx     *sql.Tx
	caller bool // the caller's: no connection of ours to release

	// With pgdriver, for transactions the Driver began.
	conn      *sql.Conn
	target    *target
	cancelled atomic.Bool
	done      atomic.Bool
}

func (t *transaction) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	query, args, err := t.d.prepare(query, args)
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
	query, args, err := t.d.prepare(query, args)
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
