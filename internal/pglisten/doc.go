// Package pglisten is the LISTEN session that pgxdriver and bundriver share:
// core.Notifications on a dedicated pgx connection that reconnects by
// itself.
//
// Open connects with pgx.ConnectConfig on a copy of the configuration it is
// given; the connection is never taken from a pool, so a long-lived
// listener cannot starve it. Whatever BuildContextWatcherHandler that
// configuration names, the session interrupts a wait with a read deadline,
// which returns at once and keeps the connection (a cancel request would do
// nothing for an idle session), and it drops any OnNotification handler,
// which would take the notifications before Receive sees them.
//
// Each connection first compares the server process id that
// pg_backend_pid() reports with the one the connection's start-up
// announced. They differ when a connection pooler such as PgBouncer
// answered the start-up itself; the session then checks that the pooler
// keeps its session. First without a notification: while a second
// connection holds a transaction open, it runs a statement again, which a
// transaction pooler that reuses the server connection used last (as
// PgBouncer does) runs on another server process. When that cannot tell,
// it notifies a channel of its own from the second connection and waits up
// to ProbeTimeout for the notification. Through PgBouncer in transaction
// pooling mode the session does not hold, and Open fails with a
// *poolerror.Error, which wraps core.ErrNotificationsUnsupported and
// names the driver's option for a direct connection (Options.ListenOption).
// BackendPID is the same check for a driver's pool.
//
// Receive returns the next notification, in the order PostgreSQL sent them.
// Receive is meant to be called from one goroutine in a loop; concurrent
// calls are serialised.
//
// When ctx ends, Receive returns ctx.Err() and the connection stays open and
// subscribed: a notification that arrives meanwhile waits in the connection
// and the next Receive returns it. So a worker may call Receive with short
// contexts without losing anything. (Should pgx close the connection all the
// same, the next Receive reconnects and reports it as below.)
//
// When the connection is lost for any other reason, Receive reconnects by
// itself, runs LISTEN again on every channel and then returns a Notification
// with Reconnected set, since messages sent while it was down are gone. It
// waits before each attempt: 100ms at first, doubling up to 5s, each wait
// randomised within its upper half. The wait goes back to 100ms once a
// connection has stayed up for longer than 5s. Receive keeps trying until
// it succeeds, ctx ends (the next Receive picks up where it left off) or
// Close is called; Options.OnError sees each failure.
//
// Close closes the connection. It may be called while another goroutine is
// blocked in Receive, which then returns at once; that Receive, and every
// later one, returns an error wrapping core.ErrNotificationsClosed.
package pglisten
