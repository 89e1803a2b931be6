package core

import (
	"context"
	"errors"
)

// This file holds everything core needs from a database driver. A driver is
// three small interfaces: Database, Transaction and Notifications. Adapters for
// pgx, lib/pq and bun live under driver/, and package conformance proves that a
// driver (including your own) behaves the way core expects.
//
// Values crossing these interfaces are plain Go types only.
//
// Arguments core passes:
//
//	string, int16, int32, int64, bool, float64, time.Time,
//	json.RawMessage (to be sent as JSON text; core always casts it, e.g. $1::json),
//	nil (SQL NULL), []string (text[]), []int64 (bigint[]).
//
// Scan destinations core uses: pointers to the types above (with *[]byte for
// json and jsonb columns, which receive the raw JSON text), and pointers to
// pointers of them (**string, **int32, **time.Time, ...) for columns that may be
// NULL: the inner pointer is set to nil for NULL. Scanned []byte values must
// be copies that stay valid after Rows.Next.
//
// Errors the server reports must expose their SQLSTATE through a method
// SQLState() string reachable with errors.As (pgx's *pgconn.PgError and
// lib/pq's *pq.Error have it): core uses it to tell, say, a concurrent
// migrator's unique violation from a real failure.

// Executor runs statements. Both Database and Transaction implement it, so
// every client call can run on either.
type Executor interface {
	// Exec runs a statement that returns no rows and reports how many rows
	// it affected.
	Exec(ctx context.Context, sql string, args ...any) (rowsAffected int64, err error)
	// Query runs a statement that returns rows. The caller closes Rows.
	Query(ctx context.Context, sql string, args ...any) (Rows, error)
}

// Rows is the result of Query, read one row at a time like database/sql.Rows.
type Rows interface {
	// Next advances to the next row, returning false when there are no more
	// rows or an error happened (see Err).
	Next() bool
	// Scan copies the current row's columns into dest, in order.
	Scan(dest ...any) error
	// Err returns the error, if any, that ended iteration.
	Err() error
	// Close releases the rows. It is safe to call more than once.
	Close() error
}

// Database is a pool of connections to one PostgreSQL database.
type Database interface {
	Executor
	// Begin starts a transaction.
	Begin(ctx context.Context) (Transaction, error)
	// Listen opens a dedicated session that has run LISTEN on each channel.
	// Drivers that cannot listen return an error wrapping
	// ErrNotificationsUnsupported; the worker then relies on polling alone.
	Listen(ctx context.Context, channels ...string) (Notifications, error)
}

// Transaction is a database transaction. It is an Executor plus Commit and
// Rollback. Drivers also offer a way to wrap a transaction the caller already
// holds (pgx.Tx, *sql.Tx, bun.Tx) so that jobs are added atomically with the
// caller's own writes; core never commits or rolls back such a transaction.
type Transaction interface {
	Executor
	Commit(ctx context.Context) error
	Rollback(ctx context.Context) error
}

// Notification is one message received on a LISTEN channel, or a signal that
// the listening session was re-established.
type Notification struct {
	// Channel is the channel the message was sent on.
	Channel string
	// Payload is the message's payload, possibly empty.
	Payload string
	// Reconnected is true (with Channel and Payload empty) when the listening
	// connection was lost and has been re-established with every LISTEN
	// restored. Messages sent while it was down are lost, so the receiver
	// should assume it missed some (the worker polls at once).
	Reconnected bool
}

// Notifications is a dedicated listening session.
//
// Implementations reconnect by themselves when the connection is lost, retrying
// with a backoff until Close is called, and report each successful reconnect
// with a Notification whose Reconnected field is true.
type Notifications interface {
	// Receive blocks until a notification arrives, a reconnect completes,
	// ctx is done (it returns ctx.Err()) or the session is closed (it returns
	// an error wrapping ErrNotificationsClosed).
	Receive(ctx context.Context) (Notification, error)
	// Close ends the session and releases its connection.
	Close(ctx context.Context) error
}

// ErrNotificationsUnsupported is returned (wrapped) by Database.Listen when
// the driver cannot LISTEN. The worker then polls only.
var ErrNotificationsUnsupported = errors.New("gworker: this driver does not support LISTEN/NOTIFY")

// ErrNotificationsClosed is returned (wrapped) by Notifications.Receive after
// Close.
var ErrNotificationsClosed = errors.New("gworker: notifications closed")
