// Package bundriver runs gworker on uptrace/bun with PostgreSQL (pgdialect):
// it implements core.Database over a *bun.DB.
//
// # Getting a Driver
//
// New wraps the *bun.DB you already have; it stays yours (Driver.Close does
// not close it). Open makes one from a postgres:// URL, with bun on its
// pgdriver, and owns it: Driver.Close closes it. pgxdriver and pqdriver have
// the same Open, New, Tx and Close, so switching drivers changes one line.
//
// Statements run on the *sql.DB under the bun.DB (db.DB) with PostgreSQL's
// $1, $2, ... placeholders, never through bun's query formatter, which
// would take the '?' of jsonb operators in gworker's SQL for placeholders.
//
//	sqldb := sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(dsn)))
//	db := bun.NewDB(sqldb, pgdialect.New())
//	d := bundriver.New(db)
//
// bun runs on its own pgdriver or on pgx's database/sql driver (stdlib);
// the Driver adapts to either.
//
// # Your own transaction
//
// Tx wraps a bun.Tx you hold, so that jobs are added atomically with your
// own writes: they become visible when you commit and vanish if you roll
// back. Core never commits or rolls back a transaction handed in this way.
//
//	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
//		if _, err := tx.NewInsert().Model(&order).Exec(ctx); err != nil {
//			return err
//		}
//		_, err := utils.WithTx(bundriver.Tx(tx)).AddJob(ctx, ShipOrder{OrderID: order.ID}, nil)
//		return err
//	})
//
// # Values and pgdriver
//
// Core passes string, int16, int32, int64, bool, float64, time.Time, nil,
// []string, []int64 and json.RawMessage.
//
// bun's pgdriver always uses PostgreSQL's simple protocol and puts
// arguments into the statement text itself, with a lexer that does not know
// quoted identifiers, dollar quotes or comments (a schema named it's would
// break it), and it cannot send slices. So with pgdriver the adapter writes
// the arguments into the statement as SQL literals itself, with a lexer
// that follows PostgreSQL's, and hands pgdriver statements without
// arguments. Nothing is ever prepared, which also suits PgBouncer in
// transaction pooling mode. pgdriver's errors (pgdriver.Error) lack the
// SQLState method core relies on, so the adapter returns them as *Error,
// which has it and unwraps to the original.
//
// pgdriver honours a context's deadline but not its cancellation. The
// adapter therefore runs each statement on a connection it takes from the
// pool for it, and when the context is cancelled sends PostgreSQL a cancel
// request for that connection's backend (as libpq, pgx and lib/pq do), cuts
// the connection if the statement has not returned two seconds later, and
// never reuses a connection on which a cancel was sent. pgdriver keeps the
// backend's key for this unexported; the adapter reads it with reflect. On
// a bun.Tx handed to Tx only the context's deadline applies.
// pgdriver's own ReadTimeout (10s by default) bounds every statement.
//
// On pgx's stdlib the arguments go to pgx as they are, except that
// json.RawMessage is sent as a string (JSON text, never bytea) and slices as
// array literals; pgx cancels statements itself. To avoid prepared
// statements behind PgBouncer, open the pool with
// default_query_exec_mode=cache_describe (or exec) in the connection string.
//
// Rows scan through database/sql, which fills pointers to pointers (nil for
// NULL) and copies []byte; the adapter adds *[]string, *[]int64 and
// pointers to them.
//
// # Notifications
//
// Listen opens a dedicated session:
//
//   - with ListenDSN, a pgx connection there — for instance past
//     PgBouncer in transaction pooling mode, which cannot keep a LISTEN:
//     bundriver.Open(ctx, pgbouncerURL, bundriver.ListenDSN(directURL));
//   - otherwise, on pgdriver, pgdriver's Listener with the bun.DB's own
//     connector settings;
//   - on pgx's stdlib, a pgx connection with the settings of the pool's
//     connections, through the same listener pgxdriver uses;
//   - on any other database/sql driver, none: Listen fails with an error
//     that asks for ListenDSN (or PollOnly), and a worker logs it when it
//     starts rather than quietly polling.
//
// PollOnly makes Listen return an error wrapping
// core.ErrNotificationsUnsupported: workers then poll alone, by choice.
//
// Behind a connection pooler (the process id a pgdriver connection got at
// start-up is not the server's), Listen on pgdriver does not LISTEN at
// all: through PgBouncer in transaction pooling mode the LISTEN would be
// lost, and checking the mode would send notifications that reach other
// clients' connections, which pgdriver fails on. It returns an error
// naming ListenDSN instead, which wraps core.ErrNotificationsUnsupported: a
// worker logs it once and polls (or stops, with
// WorkerOptions.RequireNotifications). With ListenDSN, pgx's listener
// checks a pooled connection with one notification of its own, and fails
// the same way when it does not come back within 3s (through a session
// pooling port it does). When pgdriver's listener sees none of the pings
// that confirm its LISTEN within 10s, although the server took them, it
// fails the same way too.
//
// Either way Listen returns once every LISTEN is in place, Receive returns
// notifications in order and, when its context ends, ctx.Err() without
// losing any. A lost connection is re-established by itself with a backoff
// (100ms doubling to 5s) and every LISTEN re-run, after which Receive
// returns a Notification with Reconnected set; OnListenError sees
// each failure. Close may be called while another goroutine is blocked in
// Receive, which then returns at once; that Receive, and every later one,
// returns an error wrapping core.ErrNotificationsClosed.
//
// pgdriver's Listener writes LISTEN without waiting for the server's
// answer, ignores a context's cancellation and reconnects silently, so the
// adapter drives it from a goroutine of its own that queues notifications
// for Receive, confirms each (re)connection by notifying itself on a
// private channel (gworker:ping:...) and replaces the Listener after any
// error. It quotes channel names with Go's strconv.Quote, so names with
// double quotes, backslashes or control characters need ListenDSN.
package bundriver
