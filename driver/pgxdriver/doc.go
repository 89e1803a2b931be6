// Package pgxdriver runs gworker on pgx/v5: it implements core.Database over
// a *pgxpool.Pool.
//
// # Getting a Driver
//
// Open creates a pool from a connection string and owns it: Driver.Close
// closes it. New wraps a pool you already have; the pool stays yours and
// Driver.Close leaves it open. Both take the same options (ListenDSN,
// ListenConnConfig, PollOnly, OnListenError). pqdriver and bundriver have
// the same Open, New, Tx and Close, so switching drivers changes one line:
//
//	d, err := pgxdriver.Open(ctx, url) // or pqdriver.Open, bundriver.Open
//	// handle err
//	defer d.Close()
//
// # Your own transaction or connection
//
// Tx wraps a pgx.Tx you hold, so that jobs are added atomically with your own
// writes: they become visible when you commit and vanish if you roll back.
// Core never commits or rolls back a transaction handed in this way. Conn
// does the same for anything with pgx's Exec and Query methods, such as a
// *pgx.Conn or *pgxpool.Conn, when core's statements should run on that
// session.
//
// # Values
//
// Core passes string, int16, int32, int64, bool, float64, time.Time, nil,
// []string, []int64 and json.RawMessage, and the adapter hands them to pgx
// as they are: pgx encodes each of them in every query exec mode, including
// the simple protocol, where json.RawMessage is sent as JSON text (and a nil
// one as NULL). Results are scanned by pgx directly: json and jsonb columns
// scanned into *[]byte receive the raw JSON text, and NULL scanned into a
// pointer to a pointer sets the inner pointer to nil.
//
// Errors come from pgx unchanged, so errors.As with *pgconn.PgError works.
//
// # PgBouncer
//
// Open (and a Driver from New, at its first statement) checks whether the
// pool goes through a connection pooler such as PgBouncer: the process id
// a pooler announces when a client connects is its own, not the server
// process's that pg_backend_pid() reports. pgx's default query exec mode
// prepares each statement under a name once per connection, which
// PgBouncer in transaction pooling mode (before 1.21, or without
// max_prepared_statements) breaks, since the next transaction may run on a
// server connection that never saw it. Behind a pooler the Driver
// therefore runs gworker's statements in pgx's cache_describe mode, which
// prepares nothing by name and still takes one round trip per statement
// (exec when the description cache is turned off), and adds jobs with
// INSERT rather than COPY. A mode the pool's configuration sets itself
// (default_query_exec_mode in the connection string) is kept. Your own
// statements on the pool follow its configuration, and so do gworker's
// statements on a transaction or connection you hand in with Tx or Conn
// (there is no Driver to check for a pooler): behind PgBouncer add
// default_query_exec_mode=cache_describe (or exec) to the connection
// string for them.
//
// LISTEN, on the other hand, needs a session of its own: a transaction
// pooler hands each transaction to any server connection, so a LISTEN
// would be lost. Point the listener at PostgreSQL directly (or at a
// session pooling port) with ListenDSN, or ListenConnConfig:
//
//	d, err := pgxdriver.Open(ctx, pgbouncerURL, pgxdriver.ListenDSN(directURL))
//
// Listen checks that its connection keeps its LISTEN when it goes through
// a pooler: a statement it runs while a second connection of its own holds
// a transaction open must stay on the same server process, and when that
// cannot tell, a notification it sends itself must come back within a few
// seconds. If not, it fails with an error naming ListenDSN, which wraps
// core.ErrNotificationsUnsupported: a worker logs it once and polls (or
// stops, with WorkerOptions.RequireNotifications). Where no connection can
// LISTEN at all, say so with PollOnly: Listen then reports
// core.ErrNotificationsUnsupported and workers poll without trying.
//
// # Notifications
//
// Listen opens a connection of its own with pgx.ConnectConfig, from
// ListenDSN or ListenConnConfig, or else a copy of the pool's
// configuration; it is never taken from the pool, so a long-lived
// listener cannot starve it. Whatever BuildContextWatcherHandler that
// configuration names, the listener
// interrupts a wait with a read deadline, which returns at once and keeps
// the connection (a cancel request would do nothing for an idle session).
//
// Receive returns the next notification, in the order PostgreSQL sent them.
// Receive is meant to be called from one goroutine in a loop; concurrent
// calls are serialised.
//
// When ctx ends, Receive returns ctx.Err() and the connection stays open and
// subscribed: a notification that arrives meanwhile waits in the connection
// and the next Receive returns it. So a worker may call Receive with short
// contexts without losing anything.
//
// When the connection is lost for any other reason, Receive reconnects by
// itself, runs LISTEN again on every channel and then returns a Notification
// with Reconnected set, since messages sent while it was down are gone. It
// waits before each attempt: 100ms at first, doubling up to 5s, each wait
// randomised within its upper half. The wait goes back to 100ms once a
// connection has stayed up for longer than 5s. Receive keeps trying until
// it succeeds, ctx ends (the next Receive picks up where it left off) or
// Close is called; OnListenError sees each failure. bundriver listens with
// the same session when it listens through pgx.
//
// Close closes the connection. It may be called while another goroutine is
// blocked in Receive, which then returns at once; that Receive, and every
// later one, returns an error wrapping core.ErrNotificationsClosed.
// Driver.Close does not close Notifications: close them first.
package pgxdriver
