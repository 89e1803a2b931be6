package bundriver

import (
	"context"
	"database/sql"
	"encoding/json"
	"sync"

	"github.com/gworker/gworker/core"
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
	var out []any
	for i, a := range args {
		var v any
		switch a := a.(type) {
		case json.RawMessage:
			if a != nil {
				v = string(a)
			}
		case []string:
			if a != nil {
				v = textArray(a)
			}
		case []int64:
			if a != nil {
				v = int64Array(a)
			}
		default:
			continue
		}
		if out == nil {
			out = append([]any(nil), args...)
		}
		out[i] = v
	}
	if out == nil {
		return args
	}
	return out
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
	var out []any
	for i, d := range dest {
		var w any
		switch p := d.(type) {
		case *[]string:
			w = stringsDest{p}
		case *[]int64:
			w = int64sDest{p}
		case **[]string:
			w = nullStringsDest{p}
		case **[]int64:
			w = nullInt64sDest{p}
		default:
			continue
		}
		if out == nil {
			out = append([]any(nil), dest...)
		}
		out[i] = w
	}
	if out == nil {
		return dest
	}
	return out
}
