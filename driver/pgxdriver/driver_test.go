package pgxdriver_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/driver/pgxdriver"
	"github.com/gworker/gworker/internal/pgtest"
)

// row is one set of values of every type core passes, as written.
type row struct {
	id   int64
	s    any
	i16  any
	i32  any
	i64  any
	b    any
	f    any
	ts   any
	j    any
	jb   any
	sa   any
	ia   any
	note string
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	zone := time.FixedZone("UTC+05:30", 5*3600+30*60)
	ts := time.Date(2024, 2, 29, 23, 59, 58, 123456000, zone)
	const jsonText = `{"q": "it's", "bs": "a\\b", "u": "\u00e9", "n": [1, 2.5, null, true]}`

	rows := []row{
		{
			note: "values",
			id:   1,
			s:    "it's a \\ \"quoted\"\nünïcode",
			i16:  int16(math.MinInt16),
			i32:  int32(math.MaxInt32),
			i64:  int64(math.MaxInt64),
			b:    true,
			f:    0.1 + 0.2,
			ts:   ts,
			j:    json.RawMessage(jsonText),
			jb:   json.RawMessage(jsonText),
			sa:   []string{"a", "b,c", "", "NULL", "it's", `"q"`, `back\slash`, "{}"},
			ia:   []int64{1, -2, math.MaxInt64, math.MinInt64},
		},
		{
			note: "zero values and empty arrays",
			id:   2,
			s:    "",
			i16:  int16(0),
			i32:  int32(0),
			i64:  int64(0),
			b:    false,
			f:    0.0,
			ts:   time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
			j:    json.RawMessage(`"just a string"`),
			jb:   json.RawMessage(`[]`),
			sa:   []string{},
			ia:   []int64{},
		},
		{
			note: "NULLs",
			id:   3,
			// All nil: the untyped nil core passes for SQL NULL.
		},
		{
			note: "nil json.RawMessage",
			id:   4,
			j:    json.RawMessage(nil),
			jb:   json.RawMessage(nil),
		},
	}

	for _, m := range execModes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			d, _ := newDriver(t, m.mode)
			table := newSchema(t, d) + ".vals"
			mustExec(t, d, `create table `+table+` (
				id bigint primary key, s text, i16 smallint, i32 integer, i64 bigint,
				b boolean, f double precision, ts timestamptz, j json, jb jsonb,
				sa text[], ia bigint[])`)

			for _, r := range rows {
				n := mustExec(t, d, `insert into `+table+` values
					($1, $2::text, $3::smallint, $4::integer, $5::bigint, $6::boolean,
					 $7::double precision, $8::timestamptz, $9::json, $10::jsonb,
					 $11::text[], $12::bigint[])`,
					r.id, r.s, r.i16, r.i32, r.i64, r.b, r.f, r.ts, r.j, r.jb, r.sa, r.ia)
				if n != 1 {
					t.Fatalf("%s: insert affected %d rows, want 1", r.note, n)
				}
			}

			for _, want := range rows {
				t.Run(want.note, func(t *testing.T) {
					checkStored(t, d, table, want)
					checkScanPointers(t, d, table, want)
					checkScanPointerPointers(t, d, table, want)
				})
			}
		})
	}
}

// checkStored asks the server what it stored, independently of how pgx
// scans, so that a value mangled on the way in (JSON sent as bytea, an
// empty array sent as NULL) cannot cancel out on the way back.
func checkStored(t *testing.T, d core.Executor, table string, want row) {
	t.Helper()
	rs, err := d.Query(t.Context(), `select
		s is null, i16 is null, i32 is null, i64 is null, b is null, f is null,
		ts is null, j is null, jb is null, sa is null, ia is null,
		coalesce(j::text, ''), coalesce(jb::text, ''),
		coalesce(jb = $2::jsonb, false), cardinality(sa), cardinality(ia)
		from `+table+` where id = $1`, want.id, want.jb)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	if !rs.Next() {
		t.Fatalf("no row: %v", rs.Err())
	}
	var nulls [11]bool
	var jText, jbText string
	var jbEqual bool
	var saLen, iaLen *int32
	dest := []any{}
	for i := range nulls {
		dest = append(dest, &nulls[i])
	}
	dest = append(dest, &jText, &jbText, &jbEqual, &saLen, &iaLen)
	if err := rs.Scan(dest...); err != nil {
		t.Fatal(err)
	}
	if err := rs.Close(); err != nil {
		t.Fatal(err)
	}

	vals := []any{want.s, want.i16, want.i32, want.i64, want.b, want.f, want.ts, want.j, want.jb, want.sa, want.ia}
	for i, v := range vals {
		wantNull := v == nil || isNilRaw(v)
		if nulls[i] != wantNull {
			t.Errorf("column %d: is null = %v, want %v (value %#v)", i+1, nulls[i], wantNull, v)
		}
	}
	if raw, ok := want.j.(json.RawMessage); ok && raw != nil && jText != string(raw) {
		t.Errorf("json stored as %q, want %q", jText, raw)
	}
	if raw, ok := want.jb.(json.RawMessage); ok && raw != nil && !jbEqual {
		t.Errorf("jsonb stored as %q, want %q", jbText, raw)
	}
	if sa, ok := want.sa.([]string); ok && (saLen == nil || int(*saLen) != len(sa)) {
		t.Errorf("text[] cardinality %v, want %d", saLen, len(sa))
	}
	if ia, ok := want.ia.([]int64); ok && (iaLen == nil || int(*iaLen) != len(ia)) {
		t.Errorf("bigint[] cardinality %v, want %d", iaLen, len(ia))
	}
}

func isNilRaw(v any) bool {
	raw, ok := v.(json.RawMessage)
	return ok && raw == nil
}

const selectAll = `select s, i16, i32, i64, b, f, ts, j, jb, sa, ia from `

// checkScanPointers scans a row without NULLs into plain pointers.
func checkScanPointers(t *testing.T, d core.Executor, table string, want row) {
	t.Helper()
	if want.s == nil {
		return
	}
	var (
		s     string
		i16   int16
		i32   int32
		i64   int64
		b     bool
		f     float64
		ts    time.Time
		j, jb []byte
		sa    []string
		ia    []int64
		nrows int
	)
	rs, err := d.Query(t.Context(), selectAll+table+` where id = $1`, want.id)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	for rs.Next() {
		nrows++
		if err := rs.Scan(&s, &i16, &i32, &i64, &b, &f, &ts, &j, &jb, &sa, &ia); err != nil {
			t.Fatal(err)
		}
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	if nrows != 1 {
		t.Fatalf("got %d rows, want 1", nrows)
	}
	got := []any{s, i16, i32, i64, b, f, ts, json.RawMessage(j), json.RawMessage(jb), sa, ia}
	compareRow(t, want, got)
}

// checkScanPointerPointers scans into pointers to pointers, as core does for
// nullable columns: NULL must give a nil inner pointer, a value a non-nil one.
func checkScanPointerPointers(t *testing.T, d core.Executor, table string, want row) {
	t.Helper()
	// Start from non-nil pointers so that NULL has to reset them.
	var (
		s   = new(string)
		i16 = new(int16)
		i32 = new(int32)
		i64 = new(int64)
		b   = new(bool)
		f   = new(float64)
		ts  = new(time.Time)
		j   = new([]byte)
		jb  = new([]byte)
		sa  = new([]string)
		ia  = new([]int64)
	)

	rs, err := d.Query(t.Context(), selectAll+table+` where id = $1`, want.id)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	if !rs.Next() {
		t.Fatalf("no row: %v", rs.Err())
	}
	if err := rs.Scan(&s, &i16, &i32, &i64, &b, &f, &ts, &j, &jb, &sa, &ia); err != nil {
		t.Fatal(err)
	}
	got := []any{deref(s), deref(i16), deref(i32), deref(i64), deref(b), deref(f), deref(ts), derefJSON(j), derefJSON(jb), deref(sa), deref(ia)}
	compareRow(t, want, got)
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

func derefJSON(p *[]byte) any {
	if p == nil {
		return nil
	}
	return json.RawMessage(*p)
}

var columns = []string{"s", "i16", "i32", "i64", "b", "f", "ts", "j", "jb", "sa", "ia"}

// compareRow compares scanned values with what was written. Times compare as
// instants (the zone is not stored), jsonb by meaning (jsonb normalises
// spacing and key order), NULL (nil or a nil json.RawMessage) as nil.
func compareRow(t *testing.T, want row, got []any) {
	t.Helper()
	wants := []any{want.s, want.i16, want.i32, want.i64, want.b, want.f, want.ts, want.j, want.jb, want.sa, want.ia}
	for i, w := range wants {
		if isNilRaw(w) {
			w = nil
		}
		g := got[i]
		switch {
		case w == nil:
			if g != nil {
				t.Errorf("%s: got %#v, want NULL", columns[i], g)
			}
		case columns[i] == "ts":
			if gt, ok := g.(time.Time); !ok || !gt.Equal(w.(time.Time)) {
				t.Errorf("%s: got %v, want %v", columns[i], g, w)
			}
		case columns[i] == "jb":
			if !sameJSON(t, w.(json.RawMessage), g) {
				t.Errorf("%s: got %s, want %s", columns[i], g, w)
			}
		default:
			if !reflect.DeepEqual(g, w) {
				t.Errorf("%s: got %#v, want %#v", columns[i], g, w)
			}
		}
	}
}

func sameJSON(t *testing.T, want json.RawMessage, got any) bool {
	t.Helper()
	g, ok := got.(json.RawMessage)
	if !ok {
		return false
	}
	var a, b any
	if err := json.Unmarshal(want, &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(g, &b); err != nil {
		t.Errorf("scanned jsonb is not JSON: %q: %v", g, err)
		return false
	}
	return reflect.DeepEqual(a, b)
}

// json.RawMessage arrives as the JSON text itself, never as bytea, and a
// JSON null is a value, not SQL NULL.
func TestJSONArgument(t *testing.T) {
	t.Parallel()
	const doc = `{"q": "it's", "b": "\\x00"}`
	for _, m := range execModes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			d, _ := newDriver(t, m.mode)
			rs, err := d.Query(t.Context(), `select $1::json::text, $1::jsonb->>'q',
				$2::json is null, $2::jsonb is null, $2::jsonb = 'null'::jsonb`,
				json.RawMessage(doc), json.RawMessage(`null`))
			if err != nil {
				t.Fatal(err)
			}
			defer rs.Close()
			if !rs.Next() {
				t.Fatal(rs.Err())
			}
			var text, q string
			var jNull, jbNull, isJSONNull bool
			if err := rs.Scan(&text, &q, &jNull, &jbNull, &isJSONNull); err != nil {
				t.Fatal(err)
			}
			if text != doc || q != "it's" {
				t.Errorf("JSON arrived as %q (->>'q' = %q), want %q", text, q, doc)
			}
			if jNull || jbNull || !isJSONNull {
				t.Errorf("JSON null: json is null %v, jsonb is null %v, equals 'null' %v; want false, false, true", jNull, jbNull, isJSONNull)
			}

			// SQL NULL scanned into *[]byte is a nil slice.
			rs, err = d.Query(t.Context(), `select null::json, null::jsonb`)
			if err != nil {
				t.Fatal(err)
			}
			defer rs.Close()
			j, jb := []byte("x"), []byte("x")
			if !rs.Next() {
				t.Fatal(rs.Err())
			}
			if err := rs.Scan(&j, &jb); err != nil {
				t.Fatal(err)
			}
			if j != nil || jb != nil {
				t.Errorf("NULL json, jsonb scanned into *[]byte: got %q, %q; want nil, nil", j, jb)
			}
		})
	}
}

func TestExecRowsAffected(t *testing.T) {
	t.Parallel()
	for _, m := range execModes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			d, _ := newDriver(t, m.mode)
			table := newSchema(t, d) + ".t"
			if n := mustExec(t, d, `create table `+table+` (id bigint, v text)`); n != 0 {
				t.Errorf("create table: %d rows affected, want 0", n)
			}
			if n := mustExec(t, d, `insert into `+table+` select g, 'a' from generate_series(1, $1::int) g`, int32(5)); n != 5 {
				t.Errorf("insert: %d rows affected, want 5", n)
			}
			if n := mustExec(t, d, `update `+table+` set v = $1 where id = any($2::bigint[])`, "b", []int64{1, 2, 99}); n != 2 {
				t.Errorf("update: %d rows affected, want 2", n)
			}
			if n := mustExec(t, d, `delete from `+table+` where id > $1`, int64(3)); n != 2 {
				t.Errorf("delete: %d rows affected, want 2", n)
			}
			if n := mustExec(t, d, `delete from `+table+` where id = any($1::bigint[])`, []int64{}); n != 0 {
				t.Errorf("delete none: %d rows affected, want 0", n)
			}
		})
	}
}

func TestExecError(t *testing.T) {
	t.Parallel()
	for _, m := range execModes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			d, _ := newDriver(t, m.mode)
			_, err := d.Exec(t.Context(), `select 1 / $1::int`, int32(0))
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != "22012" {
				t.Fatalf("got %v, want division_by_zero (22012)", err)
			}
		})
	}
}

func TestRowsClose(t *testing.T) {
	t.Parallel()
	for _, m := range execModes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			d, _ := newDriver(t, m.mode)

			rs, err := d.Query(t.Context(), `select g from generate_series(1, 3) g`)
			if err != nil {
				t.Fatal(err)
			}
			var got []int32
			for rs.Next() {
				var g int32
				if err := rs.Scan(&g); err != nil {
					t.Fatal(err)
				}
				got = append(got, g)
			}
			if !reflect.DeepEqual(got, []int32{1, 2, 3}) {
				t.Errorf("got %v, want [1 2 3]", got)
			}
			for i := range 2 {
				if err := rs.Close(); err != nil {
					t.Errorf("Close #%d: %v", i+1, err)
				}
			}
			if err := rs.Err(); err != nil {
				t.Errorf("Err after Close: %v", err)
			}

			// Closed early, the rest of the result is discarded and the
			// connection is usable again.
			rs, err = d.Query(t.Context(), `select g from generate_series(1, 1000) g`)
			if err != nil {
				t.Fatal(err)
			}
			if !rs.Next() {
				t.Fatal(rs.Err())
			}
			if err := rs.Close(); err != nil {
				t.Errorf("early Close: %v", err)
			}
			if rs.Next() {
				t.Error("Next after Close returned true")
			}
		})
	}
}

// A statement that fails after sending some rows reports the error from
// Err and from Close, whichever the caller looks at.
func TestRowsErrorMidway(t *testing.T) {
	t.Parallel()
	for _, m := range execModes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			d, _ := newDriver(t, m.mode)
			rs, err := d.Query(t.Context(), `select 10 / (3 - g) from generate_series(1, 5) g`)
			if err != nil {
				t.Fatal(err)
			}
			for rs.Next() {
			}
			var pgErr *pgconn.PgError
			if err := rs.Err(); !errors.As(err, &pgErr) || pgErr.Code != "22012" {
				t.Errorf("Err: got %v, want division_by_zero", err)
			}
			if err := rs.Close(); !errors.As(err, &pgErr) || pgErr.Code != "22012" {
				t.Errorf("Close: got %v, want division_by_zero", err)
			}
		})
	}
}

func TestQueryError(t *testing.T) {
	t.Parallel()
	for _, m := range execModes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			d, _ := newDriver(t, m.mode)
			rs, err := d.Query(t.Context(), `select * from no_such_table_anywhere where x = $1`, int64(1))
			if err == nil {
				// Depending on the mode pgx reports it at once or from
				// the rows; either is what core's callers handle.
				for rs.Next() {
				}
				err = rs.Close()
			}
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != "42P01" {
				t.Fatalf("got %v, want undefined_table (42P01)", err)
			}
		})
	}
}

func TestTransaction(t *testing.T) {
	t.Parallel()
	for _, m := range execModes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			d, pool := newDriver(t, m.mode)
			table := newSchema(t, d) + ".t"
			mustExec(t, d, `create table `+table+` (id bigint primary key)`)

			t.Run("commit", func(t *testing.T) {
				tx, err := d.Begin(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				if n := mustExec(t, tx, `insert into `+table+` values ($1)`, int64(1)); n != 1 {
					t.Errorf("insert in tx: %d rows, want 1", n)
				}
				if got := count(t, pool, table); got != 0 {
					t.Errorf("before commit another session sees %d rows, want 0", got)
				}
				if err := tx.Commit(t.Context()); err != nil {
					t.Fatal(err)
				}
				if got := count(t, pool, table); got != 1 {
					t.Errorf("after commit: %d rows, want 1", got)
				}
			})

			t.Run("rollback", func(t *testing.T) {
				tx, err := d.Begin(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				mustExec(t, tx, `insert into `+table+` values ($1)`, int64(2))
				rs, err := tx.Query(t.Context(), `select count(*) from `+table)
				if err != nil {
					t.Fatal(err)
				}
				var inside int64
				for rs.Next() {
					if err := rs.Scan(&inside); err != nil {
						t.Fatal(err)
					}
				}
				if err := rs.Close(); err != nil {
					t.Fatal(err)
				}
				if inside != 2 {
					t.Errorf("inside the tx: %d rows, want 2", inside)
				}
				if err := tx.Rollback(t.Context()); err != nil {
					t.Fatal(err)
				}
				if got := count(t, pool, table); got != 1 {
					t.Errorf("after rollback: %d rows, want 1", got)
				}
			})

			t.Run("error then rollback", func(t *testing.T) {
				tx, err := d.Begin(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				mustExec(t, tx, `insert into `+table+` values ($1)`, int64(3))
				_, err = tx.Exec(t.Context(), `insert into `+table+` values ($1)`, int64(3))
				var pgErr *pgconn.PgError
				if !errors.As(err, &pgErr) || pgErr.Code != "23505" {
					t.Fatalf("duplicate insert: got %v, want unique_violation", err)
				}
				_, err = tx.Exec(t.Context(), `select 1`)
				if !errors.As(err, &pgErr) || pgErr.Code != "25P02" {
					t.Errorf("after an error: got %v, want in_failed_sql_transaction", err)
				}
				if err := tx.Rollback(t.Context()); err != nil {
					t.Fatal(err)
				}
				if got := count(t, pool, table); got != 1 {
					t.Errorf("after rollback: %d rows, want 1", got)
				}
			})
		})
	}
}

func TestCallerTx(t *testing.T) {
	t.Parallel()
	for _, m := range execModes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			d, pool := newDriver(t, m.mode)
			table := newSchema(t, d) + ".t"
			mustExec(t, d, `create table `+table+` (id bigint primary key, v jsonb)`)

			for _, commit := range []bool{true, false} {
				t.Run(fmt.Sprintf("commit=%v", commit), func(t *testing.T) {
					mustExec(t, d, `truncate `+table)
					callerTx, err := pool.Begin(t.Context())
					if err != nil {
						t.Fatal(err)
					}
					defer callerTx.Rollback(context.Background())
					if _, err := callerTx.Exec(t.Context(), `insert into `+table+` values (1, null)`); err != nil {
						t.Fatal(err)
					}
					tx := pgxdriver.Tx(callerTx)
					if n := mustExec(t, tx, `insert into `+table+` values ($1, $2::jsonb)`, int64(2), json.RawMessage(`{"k":"v"}`)); n != 1 {
						t.Errorf("insert through Tx: %d rows, want 1", n)
					}
					if got := count(t, pool, table); got != 0 {
						t.Errorf("before the caller commits another session sees %d rows, want 0", got)
					}
					if commit {
						err = callerTx.Commit(t.Context())
					} else {
						err = callerTx.Rollback(t.Context())
					}
					if err != nil {
						t.Fatal(err)
					}
					want := int64(0)
					if commit {
						want = 2
					}
					if got := count(t, pool, table); got != want {
						t.Errorf("after the caller finished: %d rows, want %d", got, want)
					}
				})
			}
		})
	}
}

// Conn runs statements on the caller's session: a temporary table, which
// only that session can see, proves it.
func TestConn(t *testing.T) {
	t.Parallel()
	for _, m := range execModes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			pool := newPool(t, m.mode)
			c, err := pool.Acquire(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Release()
			if _, err := c.Exec(t.Context(), `create temporary table scratch (v text[])`); err != nil {
				t.Fatal(err)
			}
			e := pgxdriver.Conn(c)
			if n := mustExec(t, e, `insert into scratch values ($1::text[])`, []string{"x", "y"}); n != 1 {
				t.Errorf("insert: %d rows, want 1", n)
			}
			var got []string
			if err := c.QueryRow(t.Context(), `select v from scratch`).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, []string{"x", "y"}) {
				t.Errorf("got %q, want [x y]", got)
			}
			// Also a plain *pgx.Conn.
			e = pgxdriver.Conn(c.Conn())
			if n := mustExec(t, e, `delete from scratch`); n != 1 {
				t.Errorf("delete: %d rows, want 1", n)
			}
		})
	}
}

func TestContextCancel(t *testing.T) {
	t.Parallel()
	for _, m := range execModes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			d, _ := newDriver(t, m.mode)

			t.Run("exec", func(t *testing.T) {
				ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
				defer cancel()
				var err error
				within(t, 5*time.Second, func() {
					_, err = d.Exec(ctx, `select pg_sleep($1::float8)`, 10.0)
				})
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("got %v, want context.DeadlineExceeded", err)
				}
			})

			t.Run("query", func(t *testing.T) {
				ctx, cancel := context.WithCancel(t.Context())
				var err error
				within(t, 5*time.Second, func() {
					time.AfterFunc(50*time.Millisecond, cancel)
					var rs core.Rows
					rs, err = d.Query(ctx, `select pg_sleep(10)`)
					if err == nil {
						for rs.Next() {
						}
						err = rs.Close()
					}
				})
				if !errors.Is(err, context.Canceled) {
					t.Errorf("got %v, want context.Canceled", err)
				}
			})

			t.Run("transaction", func(t *testing.T) {
				tx, err := d.Begin(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				defer tx.Rollback(context.Background())
				ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
				defer cancel()
				within(t, 5*time.Second, func() {
					_, err = tx.Exec(ctx, `select pg_sleep(10)`)
				})
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("got %v, want context.DeadlineExceeded", err)
				}
			})

			// The pool is still usable afterwards.
			if n := mustExec(t, d, `select 1`); n != 1 {
				t.Errorf("select 1 after cancellations: %d rows, want 1", n)
			}
		})
	}
}

func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	for _, m := range execModes[:2] {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			d, pool := newDriver(t, m.mode)
			table := newSchema(t, d) + ".t"
			mustExec(t, d, `create table `+table+` (worker int, n int, payload jsonb, tags text[])`)

			const workers, perWorker = 16, 25
			var wg sync.WaitGroup
			errs := make(chan error, workers)
			for w := range workers {
				wg.Go(func() {
					errs <- hammer(t.Context(), d, table, int32(w), perWorker)
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Error(err)
				}
			}
			if got := count(t, pool, table); got != workers*perWorker {
				t.Errorf("%d rows, want %d", got, workers*perWorker)
			}
		})
	}
}

// hammer inserts n rows for worker w, alternating between the pool and
// transactions, and reads each back.
func hammer(ctx context.Context, d *pgxdriver.Driver, table string, w int32, n int) error {
	for i := range int32(n) {
		payload := json.RawMessage(fmt.Sprintf(`{"w":%d,"i":%d}`, w, i))
		var e core.Executor = d
		var tx core.Transaction
		if i%2 == 1 {
			var err error
			if tx, err = d.Begin(ctx); err != nil {
				return err
			}
			e = tx
		}
		if _, err := e.Exec(ctx, `insert into `+table+` values ($1, $2, $3::jsonb, $4::text[])`, w, i, payload, []string{"t"}); err != nil {
			return err
		}
		rs, err := e.Query(ctx, `select payload from `+table+` where worker = $1 and n = $2`, w, i)
		if err != nil {
			return err
		}
		var got []byte
		for rs.Next() {
			if err := rs.Scan(&got); err != nil {
				rs.Close()
				return err
			}
		}
		if err := rs.Close(); err != nil {
			return err
		}
		var v struct{ W, I int32 }
		if err := json.Unmarshal(got, &v); err != nil || v.W != w || v.I != i {
			return fmt.Errorf("worker %d row %d: read back %q", w, i, got)
		}
		if tx != nil {
			if err := tx.Commit(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

func TestOpen(t *testing.T) {
	t.Parallel()
	d, err := pgxdriver.Open(t.Context(), pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	if n := mustExec(t, d, `select 1`); n != 1 {
		t.Errorf("select 1: %d rows, want 1", n)
	}
	d.Close()
	if _, err := d.Pool().Acquire(t.Context()); err == nil {
		t.Error("Close left the pool it owns open")
	}

	// A server that does not answer fails Open itself.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := pgxdriver.Open(ctx, "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=2"); err == nil {
		t.Error("Open of an unreachable server succeeded")
	}
}

func TestNewDoesNotOwnPool(t *testing.T) {
	t.Parallel()
	pool := newPool(t, pgx.QueryExecModeCacheStatement)
	d := pgxdriver.New(pool)
	if d.Pool() != pool {
		t.Error("Pool() is not the pool given to New")
	}
	d.Close()
	if err := pool.Ping(t.Context()); err != nil {
		t.Errorf("Close closed the caller's pool: %v", err)
	}
}
