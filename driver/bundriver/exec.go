package bundriver

import (
	"context"
	"database/sql"
	"encoding/json"
	"sync"

	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/internal/anyslice"
)

// runner is the part of database/sql statements run on: *sql.DB, *sql.Conn
// and *sql.Tx.
type runner interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func execOn(ctx context.Context, q runner, query string, args []any) (int64, error) {
	res, err := q.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, wrapErr(err)
	}
	n, err := res.RowsAffected()
	return n, wrapErr(err)
}

func queryOn(ctx context.Context, q runner, query string, args []any, onClose func()) (core.Rows, error) {
	r, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, wrapErr(err)
	}
	return &rows{r: r, onClose: onClose}, nil
}

// convertArgs maps core's argument types for database/sql drivers other
// than pgdriver: json.RawMessage becomes a string (JSON text, never bytea)
// and slices become array literals.
func convertArgs(args []any) []any {
	return anyslice.Map(args, func(a any) (any, bool) {
		switch a := a.(type) {
		case json.RawMessage:
			if a == nil {
				return nil, true
			}
			return string(a), true
		case []string:
			if a == nil {
				return nil, true
			}
			return textArray(a), true
		case []int64:
			if a == nil {
				return nil, true
			}
			return int64Array(a), true
		}
		return nil, false
	})
}

// rows adapts *sql.Rows to core.Rows. database/sql scans the scalar types
// and pointers to pointers of them (NULL gives a nil pointer) and copies
// []byte; the adapter adds the array destinations.
type rows struct {
	r       *sql.Rows
	onClose func()
	once    sync.Once
}

func (r *rows) Next() bool { return r.r.Next() }
func (r *rows) Err() error { return wrapErr(r.r.Err()) }

func (r *rows) Scan(dest ...any) error { return wrapErr(r.r.Scan(convertDests(dest)...)) }

func (r *rows) Close() error {
	err := r.r.Close()
	if r.onClose != nil {
		r.once.Do(r.onClose)
	}
	if err == nil {
		err = r.r.Err()
	}
	return wrapErr(err)
}

// convertDests wraps the destinations database/sql cannot fill itself.
func convertDests(dest []any) []any {
	return anyslice.Map(dest, func(d any) (any, bool) {
		switch p := d.(type) {
		case *[]string:
			return stringsDest{p}, true
		case *[]int64:
			return int64sDest{p}, true
		case **[]string:
			return nullStringsDest{p}, true
		case **[]int64:
			return nullInt64sDest{p}, true
		}
		return nil, false
	})
}
