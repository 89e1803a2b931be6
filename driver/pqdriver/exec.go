package pqdriver

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/lib/pq"

	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/internal/anyslice"
)

// executor maps core's calls onto database/sql with lib/pq.
type executor struct {
	q Querier
}

func (e executor) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := e.q.ExecContext(ctx, query, convertArgs(args)...)
	if err != nil {
		return 0, explain(err)
	}
	return res.RowsAffected()
}

func (e executor) Query(ctx context.Context, query string, args ...any) (core.Rows, error) {
	r, err := e.q.QueryContext(ctx, query, convertArgs(args)...)
	if err != nil {
		return nil, explain(err)
	}
	return rows{r: r}, nil
}

// explain adds the likely cause to an error that says the server lost
// lib/pq's unnamed prepared statement between the two round trips lib/pq
// takes without binary_parameters: a pooler in transaction mode moved the
// connection to another server in between. The *pq.Error stays reachable
// with errors.As.
func explain(err error) error {
	var pe *pq.Error
	if errors.As(err, &pe) && pe.Code == "26000" && strings.Contains(pe.Message, "unnamed prepared statement") {
		return fmt.Errorf("%w (the connection seems to go through PgBouncer in transaction pooling mode, "+
			"which needs lib/pq's binary_parameters=yes in the connection string; pqdriver.Open sets it)", err)
	}
	return err
}

// convertArgs maps core's argument types to what lib/pq sends as text:
// json.RawMessage as a string (never bytea, not even with
// binary_parameters=yes), []string and []int64 as PostgreSQL array
// literals. Everything else database/sql and lib/pq handle as they are.
func convertArgs(args []any) []any {
	return anyslice.Map(args, func(a any) (any, bool) {
		switch a := a.(type) {
		case json.RawMessage:
			if a == nil {
				return nil, true
			}
			return string(a), true
		case []string:
			return pq.StringArray(a), true
		case []int64:
			return pq.Int64Array(a), true
		}
		return nil, false
	})
}

// rows adapts *sql.Rows to core.Rows. database/sql scans the scalar types
// and their pointers to pointers (NULL gives a nil pointer) and copies
// []byte; arrays go through pq's array scanners.
type rows struct {
	r *sql.Rows
}

func (r rows) Next() bool   { return r.r.Next() }
func (r rows) Err() error   { return r.r.Err() }
func (r rows) Close() error { return r.r.Close() }

func (r rows) Scan(dest ...any) error {
	return r.r.Scan(convertDests(dest)...)
}

// convertDests wraps the destinations database/sql cannot fill itself.
func convertDests(dest []any) []any {
	return anyslice.Map(dest, func(d any) (any, bool) {
		switch p := d.(type) {
		case *[]string:
			return (*pq.StringArray)(p), true
		case *[]int64:
			return (*pq.Int64Array)(p), true
		case **[]string:
			return nullStrings{p}, true
		case **[]int64:
			return nullInt64s{p}, true
		}
		return nil, false
	})
}

// nullStrings and nullInt64s scan arrays into **[]string and **[]int64:
// NULL sets the inner pointer to nil.
type nullStrings struct{ p **[]string }

func (n nullStrings) Scan(src any) error {
	if src == nil {
		*n.p = nil
		return nil
	}
	var a pq.StringArray
	if err := a.Scan(src); err != nil {
		return err
	}
	v := []string(a)
	*n.p = &v
	return nil
}

type nullInt64s struct{ p **[]int64 }

func (n nullInt64s) Scan(src any) error {
	if src == nil {
		*n.p = nil
		return nil
	}
	var a pq.Int64Array
	if err := a.Scan(src); err != nil {
		return err
	}
	v := []int64(a)
	*n.p = &v
	return nil
}
