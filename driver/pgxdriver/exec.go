package pgxdriver

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/gworker/gworker/core"
)

// Querier is the part of pgx's API that the adapter runs statements through.
// *pgxpool.Pool, *pgxpool.Conn, *pgx.Conn and pgx.Tx all implement it.
type Querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Conn returns a core.Executor that runs statements on q, for example a
// *pgx.Conn or *pgxpool.Conn the caller holds, so that core's statements
// share the caller's session (and its transaction, if one is open). The
// caller keeps ownership of q.
func Conn(q Querier) core.Executor {
	return executor{q: q}
}

// Tx wraps a transaction the caller already holds, so that core's
// statements (adding a job, say) commit or roll back together with the
// caller's own writes.
//
// Commit and Rollback delegate to tx, but core never calls them on a
// transaction handed in this way: the caller finishes it as usual.
func Tx(tx pgx.Tx) core.Transaction {
	return transaction{executor: executor{q: tx}, tx: tx}
}

// executor maps core's calls onto a pgx Querier.
//
// Arguments go to pgx unchanged: pgx encodes every type core passes in every
// query exec mode. That includes json.RawMessage, which pgx (since v5.5.4)
// sends as JSON text even in the simple protocol, where any other []byte
// becomes a bytea literal; TestRoundTrip holds it to that in all five modes.
//
// A non-zero mode runs every statement in that query exec mode instead of
// the connection's default (see poolerMode).
type executor struct {
	q    Querier
	mode pgx.QueryExecMode
}

// args puts the query exec mode, if any, before the arguments, where pgx
// takes it as an option.
func (e executor) args(args []any) []any {
	if e.mode == 0 {
		return args
	}
	return append([]any{e.mode}, args...)
}

func (e executor) Exec(ctx context.Context, sql string, args ...any) (int64, error) {
	tag, err := e.q.Exec(ctx, sql, e.args(args)...)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

func (e executor) Query(ctx context.Context, sql string, args ...any) (core.Rows, error) {
	r, err := e.q.Query(ctx, sql, e.args(args)...)
	if err != nil {
		return nil, err
	}
	return rows{r: r}, nil
}

// rows adapts pgx.Rows to core.Rows. pgx already scans into the pointer and
// pointer-to-pointer destinations core uses, including json and jsonb
// columns into *[]byte as raw JSON text.
type rows struct {
	r pgx.Rows
}

func (r rows) Next() bool             { return r.r.Next() }
func (r rows) Scan(dest ...any) error { return r.r.Scan(dest...) }
func (r rows) Err() error             { return r.r.Err() }

// Close releases the connection. pgx's Close is idempotent and reports
// nothing itself, so Close returns Err: an error that happened while the
// rest of the result was being read and discarded is not lost.
func (r rows) Close() error {
	r.r.Close()
	return r.r.Err()
}

// transaction adapts a pgx.Tx to core.Transaction.
type transaction struct {
	executor
	tx pgx.Tx
}

func (t transaction) Commit(ctx context.Context) error   { return t.tx.Commit(ctx) }
func (t transaction) Rollback(ctx context.Context) error { return t.tx.Rollback(ctx) }

// copier is the part of pgx's API that COPY runs through; *pgxpool.Pool,
// *pgxpool.Conn, *pgx.Conn and pgx.Tx all have it.
type copier interface {
	CopyFrom(ctx context.Context, tableName pgx.Identifier, columnNames []string, rowSrc pgx.CopyFromSource) (int64, error)
}

// CopyFrom implements core.CopyFromer with pgx's binary COPY, on any
// Querier that has CopyFrom (all of pgx's do); for others it returns
// core.ErrCopyUnsupported. So it does behind a connection pooler (a
// non-zero mode): pgx's COPY describes the table in the connection's
// default mode, which may prepare a statement by name, and core then adds
// the rows with INSERT.
func (e executor) CopyFrom(ctx context.Context, schema, table string, columns []string, rows [][]any) (int64, error) {
	c, ok := e.q.(copier)
	if !ok || e.mode != 0 {
		return 0, core.ErrCopyUnsupported
	}
	return c.CopyFrom(ctx, pgx.Identifier{schema, table}, columns, pgx.CopyFromRows(rows))
}
