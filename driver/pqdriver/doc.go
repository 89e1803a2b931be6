// Package pqdriver runs gworker on database/sql with lib/pq: it implements
// core.Database over a *sql.DB.
//
// # Getting a Driver
//
// Open connects with a connection string and owns the resulting *sql.DB
// (Driver.Close closes it); it also listens for notifications on that
// connection string. New wraps a *sql.DB you already have and leaves it
// yours (Driver.Close does not close it). pgxdriver and bundriver have the
// same Open, New, Tx and Close, so switching drivers changes one line.
//
// A *sql.DB does not reveal how it connects, so a Driver from New that a
// worker uses must be told how to LISTEN, with ListenDSN, or that the
// worker polls alone (WorkerOptions.PollInterval), with PollOnly. With
// neither, Listen fails with an error that says so, and the worker logs
// it when it starts, rather than quietly polling. (A process that only
// adds jobs never listens and needs neither.)
//
//	db, err := sql.Open("postgres", dsn)
//	// handle err
//	d := pqdriver.New(db, pqdriver.ListenDSN(dsn))
//
// # Your own transaction or connection
//
// Tx wraps a *sql.Tx you hold, so that jobs are added atomically with your
// own writes: they become visible when you commit and vanish if you roll
// back. Core never commits or rolls back a transaction handed in this way.
// Conn does the same for a *sql.Conn.
//
//	tx, err := d.DB().BeginTx(ctx, nil)
//	// ... your writes on tx ...
//	_, err = utils.WithTx(pqdriver.Tx(tx)).AddJob(ctx, payload, nil)
//	err = tx.Commit()
//
// # Values
//
// Core passes string, int16, int32, int64, bool, float64, time.Time, nil,
// []string, []int64 and json.RawMessage. The adapter sends json.RawMessage
// as a string (JSON text, never bytea) and slices as pq.StringArray and
// pq.Int64Array; database/sql and lib/pq take the rest as they are. Rows
// scan through database/sql, which fills pointers to pointers (nil for
// NULL) and copies []byte, plus pq's array scanners for *[]string,
// *[]int64 and pointers to them.
//
// Errors are lib/pq's *pq.Error, whose SQLState method core relies on.
// Cancelling a context stops the statement: lib/pq sends PostgreSQL a
// cancel request. As with database/sql, a transaction is rolled back if
// the context given to Begin ends first.
//
// # PgBouncer
//
// lib/pq never keeps prepared statements: a statement without arguments
// goes in the simple protocol; one with arguments goes through an unnamed
// statement, by default parsed in a first round trip and executed in a
// second, between which PgBouncer in transaction pooling mode may move the
// connection to another server. With binary_parameters=yes lib/pq sends
// each statement and its arguments in one round trip instead, which a
// transaction pooler handles, and which is faster anyway; Open turns it on
// unless the connection string sets it. The adapter sends only text
// values, so this changes nothing else. A *sql.DB handed to New needs
// binary_parameters=yes in its own connection string behind PgBouncer.
// PgBouncer also refuses the extra_float_digits start-up parameter that
// lib/pq sends unless its ignore_startup_parameters lists it.
//
// LISTEN needs a session: point ListenDSN at PostgreSQL itself or at a
// session pooling port:
//
//	d, err := pqdriver.Open(ctx, pgbouncerURL, pqdriver.ListenDSN(directURL))
//
// Listen checks that its connection keeps its LISTEN (a notification it
// sends through the pool must come back within a few seconds); if not, it
// fails with an error naming ListenDSN, which wraps
// core.ErrNotificationsUnsupported: a worker logs it once and polls (or
// stops, with WorkerOptions.RequireNotifications).
//
// # Notifications
//
// Listen opens a pq.Listener on the ListenDSN, a connection of its own,
// and returns once the server acknowledged every LISTEN (a first
// connection attempt that fails is an error). Receive returns notifications
// in order; when its context ends it returns ctx.Err() and nothing is lost,
// since pq.Listener keeps reading into its channel. When the connection is
// lost, pq.Listener reconnects by itself, waiting the minimum of
// ReconnectInterval at first (100ms by default) and doubling up to its
// maximum (5s), re-runs every LISTEN and Receive then returns a
// Notification with Reconnected set. OnListenError sees
// each loss and failed attempt. Close may be called while another goroutine
// is blocked in Receive, which then returns at once; that Receive, and
// every later one, returns an error wrapping core.ErrNotificationsClosed.
package pqdriver
