package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gworker/gworker/core"
)

func (s *suite) contract(t *testing.T) {
	t.Run("Arguments", s.testArguments)
	t.Run("ArgumentsInExec", s.testArgumentsInExec)
	t.Run("ArgumentsInOtherTimeZone", s.testArgumentsOtherZone)
	t.Run("SQLTextUntouched", s.testSQLText)
	t.Run("Scan", s.testScan)
	t.Run("ScanNULL", s.testScanNull)
	t.Run("NULLInEveryPosition", s.testNullPositions)
	t.Run("ScannedBytesAreCopies", s.testBytesCopied)
	t.Run("RowsAffected", s.testRowsAffected)
	t.Run("ErrorsExposeSQLState", s.testSQLState)
	t.Run("UsableAfterErrors", s.testRecovery)
	t.Run("RowsLifecycle", s.testRowsLifecycle)
	t.Run("LargeResult", s.testLargeResult)
	t.Run("RowsCloseReleases", s.testRowsCloseReleases)
	t.Run("Transactions", s.testTransactions)
	t.Run("ContextCancellation", s.testCancel)
	t.Run("ConcurrentUse", s.testConcurrency)
	s.listenContract(t)
}

// zones used by the time values: a half-hour offset, a negative one and one
// with seconds (as historical local mean times have).
var (
	zoneIndia = time.FixedZone("UTC+05:30", 5*3600+30*60)
	zoneWest  = time.FixedZone("UTC-08:00", -8*3600)
	zoneLMT   = time.FixedZone("LMT", 5*3600+53*60+28)
)

// someStrings holds the awkward cases for text and text[] encodings.
var someStrings = []string{"a", "b,c", "", "NULL", "null", "it's", `"q"`, `back\slash`, "{}", "{a,b}", " spaced ", "ünï ☃", "$1", "?", "tab\there", "line\nbreak"}

const jsonDoc = `{"q": "it's", "bs": "a\\b", "u": "\u00e9 ☃", "n": [1, 2.5, null, true], "e": {}}`

type argCase struct {
	name string
	arg  any
	// expr is a boolean SQL expression over $1 that is true exactly when
	// the server received the right value. Written without parameters
	// other than $1, with the expected value as a literal.
	expr string
}

func argCases() []argCase {
	textArray := make([]string, len(someStrings))
	for i, s := range someStrings {
		textArray[i] = quoteLiteral(s)
	}
	return []argCase{
		{"string", "it's a \\ \"quoted\"\nünïcode ☃ $1 ?", `$1::text = ` + quoteLiteral("it's a \\ \"quoted\"\nünïcode ☃ $1 ?")},
		{"empty string (not NULL)", "", `$1::text = '' and $1::text is not null`},
		{"int16", int16(math.MinInt16), `$1::int2 = -32768`},
		{"int16 max", int16(math.MaxInt16), `$1::int2 = 32767`},
		{"int32", int32(math.MaxInt32), `$1::int4 = 2147483647`},
		{"int32 negative", int32(-7), `$1::int4 = -7`},
		{"int64", int64(math.MaxInt64), `$1::int8 = 9223372036854775807`},
		{"int64 min", int64(math.MinInt64), `$1::int8 = (-9223372036854775807 - 1)`},
		{"bool true", true, `$1::bool is true`},
		{"bool false", false, `$1::bool is false`},
		{"float64", math.Nextafter(0.3, 1), `$1::float8 = '0.30000000000000004'::float8`},
		{"float64 huge negative", -1.5e300, `$1::float8 = '-1.5e300'::float8`},
		{"float64 tiny", 5e-324, `$1::float8 = '4.9406564584124654e-324'::float8`},
		{"time.Time in +05:30 with microseconds", time.Date(2024, 2, 29, 23, 59, 58, 123456000, zoneIndia),
			`$1::timestamptz = '2024-02-29 18:29:58.123456+00'`},
		{"time.Time in -08:00", time.Date(2023, 12, 31, 20, 0, 0, 1000, zoneWest),
			`$1::timestamptz = '2024-01-01 04:00:00.000001+00'`},
		{"time.Time with a seconds offset", time.Date(1900, 6, 1, 12, 0, 0, 0, zoneLMT),
			`$1::timestamptz = '1900-06-01 06:06:32+00'`},
		{"time.Time in UTC", time.Date(2038, 1, 19, 3, 14, 8, 999999000, time.UTC),
			`$1::timestamptz = '2038-01-19 03:14:08.999999+00'`},
		{"json.RawMessage as json", json.RawMessage(jsonDoc), `$1::json::text = ` + quoteLiteral(jsonDoc)},
		{"json.RawMessage as jsonb", json.RawMessage(jsonDoc), `$1::jsonb = ` + quoteLiteral(jsonDoc) + `::jsonb`},
		{"json.RawMessage string", json.RawMessage(`"just a string"`), `$1::jsonb = '"just a string"'::jsonb`},
		{"json.RawMessage null (JSON, not SQL NULL)", json.RawMessage(`null`), `$1::jsonb is not null and $1::jsonb = 'null'::jsonb`},
		{"json.RawMessage array", json.RawMessage(`[{"a":1},[]]`), `$1::json::text = '[{"a":1},[]]'`},
		{"nil as text", nil, `$1::text is null`},
		{"nil as bigint", nil, `$1::int8 is null`},
		{"nil as timestamptz", nil, `$1::timestamptz is null`},
		{"nil as json", nil, `$1::json is null`},
		{"nil as text[]", nil, `$1::text[] is null`},
		{"nil as float8", nil, `$1::float8 is null`},
		{"[]string", someStrings, `$1::text[] = array[` + strings.Join(textArray, ", ") + `]::text[]`},
		{"empty []string (not NULL)", []string{}, `$1::text[] is not null and $1::text[] = '{}'::text[]`},
		{"[]int64", []int64{1, -2, 0, math.MaxInt64, math.MinInt64},
			`$1::int8[] = array[1, -2, 0, 9223372036854775807, -9223372036854775807 - 1]::int8[]`},
		{"empty []int64 (not NULL)", []int64{}, `$1::int8[] is not null and cardinality($1::int8[]) = 0`},
	}
}

func (s *suite) testArguments(t *testing.T) {
	t.Parallel()
	e := s.setup(t)
	for _, c := range argCases() {
		var ok *bool
		err := queryRow(e.ctx, e.db, "select ("+c.expr+")::bool", []any{c.arg}, &ok)
		switch {
		case err != nil:
			itemArgs.errorf(t, "%s (%T): select (%s) failed: %v", c.name, c.arg, c.expr, err)
		case ok == nil || !*ok:
			got := "(unknown)"
			var text *string
			if queryRow(e.ctx, e.db, "select $1::text", []any{c.arg}, &text) == nil {
				got = "NULL"
				if text != nil {
					got = strconv.Quote(*text)
				}
			}
			itemArgs.errorf(t, "%s (%T): the server received %s; %s is not true", c.name, c.arg, got, c.expr)
		}
	}

	// Many arguments: $10 and $11 are theirs, not $1's.
	args := make([]any, 12)
	for i := range args {
		args[i] = int64(i + 1)
	}
	args[9] = "ten"
	args[10] = nil
	var ok *bool
	expr := `$1::int8 = 1 and $2::int8 = 2 and $10::text = 'ten' and $11::int8 is null and $12::int8 = 12 and $3::int8 + $4::int8 + $5::int8 + $6::int8 + $7::int8 + $8::int8 + $9::int8 = 42`
	if err := queryRow(e.ctx, e.db, "select ("+expr+")::bool", args, &ok); err != nil || ok == nil || !*ok {
		itemArgs.errorf(t, "12 arguments (1..12 with $10 = 'ten' and $11 = nil): %s is not true (err %v)", expr, err)
	}
}

// otherZone is a time zone unlike the process's local one, so that a driver
// sending times as wall-clock text without an offset (read by the server in
// the session's TimeZone) cannot pass by the two agreeing.
func otherZone() string {
	now := time.Now()
	_, local := now.Zone()
	for _, z := range []struct {
		name   string
		offset int
	}{{"Asia/Kathmandu", 5*3600 + 45*60}, {"America/St_Johns", -3*3600 - 30*60}} {
		if local != z.offset && local != z.offset+3600 {
			return z.name
		}
	}
	return "Pacific/Chatham"
}

// The argument cases again, in a Transaction whose session's TimeZone is
// neither UTC nor the process's: times must go with their offset.
func (s *suite) testArgumentsOtherZone(t *testing.T) {
	t.Parallel()
	e := s.setup(t)
	tx, err := e.db.Begin(e.ctx)
	if err != nil {
		itemTx.fatalf(t, "Begin: %v", err)
	}
	defer tx.Rollback(context.WithoutCancel(e.ctx))
	zone := otherZone()
	mustExec(t, e.ctx, tx, itemSetup, `select set_config('TimeZone', $1, true)`, zone)
	for _, c := range argCases() {
		var ok *bool
		err := queryRow(e.ctx, tx, "select ("+c.expr+")::bool", []any{c.arg}, &ok)
		switch {
		case err != nil:
			itemArgs.fatalf(t, "session TimeZone %s: %s (%T): select (%s) failed: %v", zone, c.name, c.arg, c.expr, err)
		case ok == nil || !*ok:
			got := "(unknown)"
			var text *string
			if queryRow(e.ctx, tx, "select $1::text", []any{c.arg}, &text) == nil {
				got = "NULL"
				if text != nil {
					got = strconv.Quote(*text)
				}
			}
			itemArgs.errorf(t, "session TimeZone %s (the process's is %s): %s (%T): the server received %s; %s is not true "+
				"(a time.Time must carry its offset; text without one is read in the session's zone)",
				zone, time.Local, c.name, c.arg, got, c.expr)
		}
	}
}

// Exec takes the same arguments as Query: insert a row of each and compare
// on the server.
func (s *suite) testArgumentsInExec(t *testing.T) {
	t.Parallel()
	e := s.setup(t)
	table := quoteIdent(e.newSchema()) + ".vals"
	e.exec(itemSetup, `create table `+table+` (id int8, s text, i16 int2, i32 int4, i64 int8, b bool, f float8,
		ts timestamptz, j json, jb jsonb, sa text[], ia int8[])`)
	ts := time.Date(2024, 2, 29, 23, 59, 58, 123456000, zoneIndia)
	n, err := e.db.Exec(e.ctx, `insert into `+table+` values ($1, $2, $3, $4, $5, $6, $7, $8, $9::json, $10::jsonb, $11, $12)`,
		int64(1), "it's", int16(-5), int32(7), int64(math.MinInt64), true, 2.5, ts,
		json.RawMessage(jsonDoc), json.RawMessage(jsonDoc), []string{"a", "b,c", ""}, []int64{3, -4})
	if err != nil {
		itemArgs.fatalf(t, "Exec(insert with one argument of each type): %v", err)
	}
	if n != 1 {
		itemRowsAffected.errorf(t, "insert of one row reported %d rows affected", n)
	}
	// Without casts in the statement: the server infers the types from the
	// columns.
	if _, err := e.db.Exec(e.ctx, `insert into `+table+` values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		int64(2), nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil); err != nil {
		itemArgs.fatalf(t, "Exec(insert of NULLs): %v", err)
	}
	good := e.count(itemArgs, `select count(*) from `+table+` where id = 1 and s = 'it''s' and i16 = -5 and i32 = 7
		and i64 = -9223372036854775807 - 1 and b and f = 2.5 and ts = '2024-02-29 18:29:58.123456+00'
		and j::text = `+quoteLiteral(jsonDoc)+` and jb = `+quoteLiteral(jsonDoc)+`::jsonb
		and sa = array['a', 'b,c', '']::text[] and ia = array[3, -4]::int8[]`)
	if good != 1 {
		itemArgs.errorf(t, "a row inserted with Exec does not hold the values passed (string, int16, int32, int64, bool, float64, time.Time, json.RawMessage, []string, []int64)")
	}
	nulls := e.count(itemArgs, `select count(*) from `+table+` where id = 2 and num_nulls(s, i16, i32, i64, b, f, ts, j, jb, sa, ia) = 11`)
	if nulls != 1 {
		itemArgs.errorf(t, "nil arguments to Exec did not all arrive as SQL NULL")
	}
}

// The statement text is the server's: only $N is the driver's business.
func (s *suite) testSQLText(t *testing.T) {
	t.Parallel()
	e := s.setup(t)
	cases := []struct {
		name string
		sql  string
		args []any
		want string
	}{
		{"'?|' in a string next to parameters", `select $1::text || '?|' || $2::text`, []any{"a", "b"}, "a?|b"},
		{"the jsonb operators ?, ?| and ?&",
			`select ('{"a":1,"b":2}'::jsonb ?| $1::text[])::text || ('{"a":1}'::jsonb ? 'a')::text || ('{"a":1}'::jsonb ?& $2::text[])::text`,
			[]any{[]string{"b", "z"}, []string{"a"}}, "truetruetrue"},
		{"$1 inside a string literal", `select '$1 and $2' || $1::text`, []any{"x"}, "$1 and $2x"},
		{"escape string with a quote", `select E'it\'s $1 ' || $1::text`, []any{"x"}, "it's $1 x"},
		{"dollar-quoted text", `select $q$ it's $1 ? $q$ || $1::text`, []any{"x"}, " it's $1 ? x"},
		{"comments", "select $1::text -- it's $2 ?\n || /* it's $1 */ $2::text", []any{"a", "b"}, "ab"},
		{"quoted identifier", `select "it's $2 ?" from (select $1::text as "it's $2 ?") s`, []any{"x"}, "x"},
		{"argument that looks like SQL", `select $1::text || $2::text`, []any{"$2 it's ? '", "--"}, "$2 it's ? '--"},
		{"no arguments, with ? and $1 in the text", `select '?' || '$1'`, nil, "?$1"},
	}
	for _, c := range cases {
		var got *string
		if err := queryRow(e.ctx, e.db, c.sql, c.args, &got); err != nil {
			itemSQLText.errorf(t, "%s: Query(%s) failed: %v", c.name, short(c.sql), err)
			continue
		}
		if got == nil || *got != c.want {
			g := "NULL"
			if got != nil {
				g = strconv.Quote(*got)
			}
			itemSQLText.errorf(t, "%s: Query(%s) returned %s, want %q", c.name, short(c.sql), g, c.want)
		}
	}
	// Exec as well, with a statement list and no arguments (migrations).
	table := quoteIdent(e.newSchema()) + ".t"
	if _, err := e.db.Exec(e.ctx, `create table `+table+` (v text); insert into `+table+` values ('?'), ($x$ $1 $x$);
		create function `+quoteIdent(e.schema)+`.f() returns text language plpgsql as $$ begin return '$1 ?'; end $$`); err != nil {
		itemSQLText.fatalf(t, "Exec of three statements without arguments (a table, an insert with a dollar quote, a function with a $$ body) failed: %v", err)
	}
	if n := e.count(itemSQLText, `select count(*) from `+table+` where v in ('?', ' $1 ') and `+quoteIdent(e.schema)+`.f() = $1`, "$1 ?"); n != 2 {
		itemSQLText.errorf(t, "a statement list run by Exec stored %d of 2 rows as written", n)
	}
}

func (s *suite) testScan(t *testing.T) {
	t.Parallel()
	e := s.setup(t)
	var (
		str           string
		i16           int16
		i32           int32
		i64           int64
		b             bool
		f             float64
		ts            time.Time
		j, jb         []byte
		sa, saEmpty   []string
		ia, iaEmpty   []int64
		empty         string
		jNull, jbNull []byte
	)
	sa, ia = []string{"stale"}, []int64{99}
	err := queryRow(e.ctx, e.db, `select 'it''s ü'::text, (-32768)::int2, 2147483647::int4, (-9223372036854775807 - 1)::int8,
		true, '0.30000000000000004'::float8, '2024-02-29 18:29:58.123456+00'::timestamptz,
		'{"a": [1, "x"],  "b": {}}'::json, '{"b": null, "a": [1]}'::jsonb,
		array[`+strings.Join(quoteAll(someStrings), ", ")+`]::text[], '{}'::text[],
		array[1, -2, 9223372036854775807]::int8[], '{}'::int8[], ''::text, 'null'::json, '"s"'::jsonb`, nil,
		&str, &i16, &i32, &i64, &b, &f, &ts, &j, &jb, &sa, &saEmpty, &ia, &iaEmpty, &empty, &jNull, &jbNull)
	if err != nil {
		itemScan.fatalf(t, "select of one value of each type: %v", err)
	}
	check := func(what string, ok bool, got any) {
		t.Helper()
		if !ok {
			itemScan.errorf(t, "%s: got %#v", what, got)
		}
	}
	check(`text into *string = "it's ü"`, str == "it's ü", str)
	check("int2 into *int16 = -32768", i16 == math.MinInt16, i16)
	check("int4 into *int32 = 2147483647", i32 == math.MaxInt32, i32)
	check("int8 into *int64 = MinInt64", i64 == math.MinInt64, i64)
	check("bool into *bool = true", b, b)
	check("float8 into *float64 = 0.30000000000000004", f == math.Nextafter(0.3, 1), f)
	check("timestamptz into *time.Time = 2024-02-29 18:29:58.123456 UTC", ts.Equal(time.Date(2024, 2, 29, 18, 29, 58, 123456000, time.UTC)), ts)
	check(`json into *[]byte = the raw text {"a": [1, "x"],  "b": {}}`, string(j) == `{"a": [1, "x"],  "b": {}}`, string(j))
	check(`jsonb into *[]byte = JSON equal to {"a": [1], "b": null}`, sameJSON(jb, `{"a": [1], "b": null}`), string(jb))
	check("text[] into *[]string", reflect.DeepEqual(sa, someStrings), sa)
	check("empty text[] into *[]string = empty", len(saEmpty) == 0, saEmpty)
	check("int8[] into *[]int64", reflect.DeepEqual(ia, []int64{1, -2, math.MaxInt64}), ia)
	check("empty int8[] into *[]int64 = empty", len(iaEmpty) == 0, iaEmpty)
	check(`empty text into *string = ""`, empty == "", empty)
	check(`JSON null into *[]byte = "null"`, string(jNull) == "null", string(jNull))
	check(`jsonb string into *[]byte = "\"s\""`, string(jbNull) == `"s"`, string(jbNull))
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = quoteLiteral(s)
	}
	return out
}

func sameJSON(got []byte, want string) bool {
	var g, w any
	if json.Unmarshal(got, &g) != nil || json.Unmarshal([]byte(want), &w) != nil {
		return false
	}
	return reflect.DeepEqual(g, w)
}

// nullDests are pointers to pointers, pre-set to non-nil values so that NULL
// has to reset them.
type nullDests struct {
	s   *string
	i16 *int16
	i32 *int32
	i64 *int64
	b   *bool
	f   *float64
	ts  *time.Time
	j   *[]byte
	sa  *[]string
	ia  *[]int64
	raw []byte // *[]byte directly
}

func newNullDests() *nullDests {
	x := []byte("stale")
	return &nullDests{s: new(string), i16: new(int16), i32: new(int32), i64: new(int64), b: new(bool), f: new(float64),
		ts: new(time.Time), j: &x, sa: &[]string{"stale"}, ia: &[]int64{1}, raw: []byte("stale")}
}

func (d *nullDests) ptrs() []any {
	return []any{&d.s, &d.i16, &d.i32, &d.i64, &d.b, &d.f, &d.ts, &d.j, &d.sa, &d.ia, &d.raw}
}

func (s *suite) testScanNull(t *testing.T) {
	t.Parallel()
	e := s.setup(t)
	rows, err := e.db.Query(e.ctx, `select null::text, null::int2, null::int4, null::int8, null::bool, null::float8,
		null::timestamptz, null::jsonb, null::text[], null::int8[], null::json
		union all
		select 'x', 2, 3, 4, false, 1.5, '2024-01-01 00:00:00+00', '{"k": 1}', '{a}', '{5}', '[]'`)
	if err != nil {
		itemScanNull.fatalf(t, "Query: %v", err)
	}
	defer rows.Close()
	var got []*nullDests
	for rows.Next() {
		d := newNullDests()
		if err := rows.Scan(d.ptrs()...); err != nil {
			itemScanNull.fatalf(t, "Scan of row %d into **string, **int16, **int32, **int64, **bool, **float64, **time.Time, **[]byte, **[]string, **[]int64 and *[]byte: %v", len(got)+1, err)
		}
		got = append(got, d)
	}
	if err := rows.Err(); err != nil {
		itemScanNull.fatalf(t, "Rows.Err: %v", err)
	}
	if len(got) != 2 {
		itemScanNull.fatalf(t, "got %d rows, want 2", len(got))
	}
	n := got[0]
	for _, c := range []struct {
		typ    string
		isNil  bool
		pretty any
	}{
		{"**string", n.s == nil, n.s}, {"**int16", n.i16 == nil, n.i16}, {"**int32", n.i32 == nil, n.i32},
		{"**int64", n.i64 == nil, n.i64}, {"**bool", n.b == nil, n.b}, {"**float64", n.f == nil, n.f},
		{"**time.Time", n.ts == nil, n.ts}, {"**[]byte (jsonb)", n.j == nil, n.j}, {"**[]string", n.sa == nil, n.sa},
		{"**[]int64", n.ia == nil, n.ia},
	} {
		if !c.isNil {
			itemScanNull.errorf(t, "NULL scanned into %s left the inner pointer non-nil (pointing at %v)", c.typ, deref(c.pretty))
		}
	}
	if n.raw != nil {
		itemScanNull.errorf(t, "NULL json scanned into *[]byte gave %q, want nil", n.raw)
	}
	v := got[1]
	ok := v.s != nil && *v.s == "x" && v.i16 != nil && *v.i16 == 2 && v.i32 != nil && *v.i32 == 3 && v.i64 != nil && *v.i64 == 4 &&
		v.b != nil && !*v.b && v.f != nil && *v.f == 1.5 && v.ts != nil && v.ts.Equal(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)) &&
		v.j != nil && sameJSON(*v.j, `{"k": 1}`) && v.sa != nil && reflect.DeepEqual(*v.sa, []string{"a"}) &&
		v.ia != nil && reflect.DeepEqual(*v.ia, []int64{5}) && string(v.raw) == "[]"
	if !ok {
		itemScanNull.errorf(t, "values scanned into pointers to pointers: got %s, want x 2 3 4 false 1.5 2024-01-01T00:00:00Z {\"k\": 1} [a] [5] []",
			strings.Join([]string{show(v.s), show(v.i16), show(v.i32), show(v.i64), show(v.b), show(v.f), show(v.ts),
				showBytes(v.j), show(v.sa), show(v.ia), string(v.raw)}, " "))
	}
}

func deref(p any) any {
	v := reflect.ValueOf(p)
	if v.Kind() == reflect.Pointer && !v.IsNil() {
		return v.Elem().Interface()
	}
	return p
}

func show[T any](p *T) string {
	if p == nil {
		return "<nil>"
	}
	return fmt.Sprint(*p)
}

func showBytes(p *[]byte) string {
	if p == nil {
		return "<nil>"
	}
	return string(*p)
}

func (s *suite) testNullPositions(t *testing.T) {
	t.Parallel()
	e := s.setup(t)
	rows, err := e.db.Query(e.ctx, `select * from (values
		(1::int8, null::text, 'b'::text, null::int8, null::timestamptz),
		(2, 'a', null, 5, null),
		(3, null, null, null, '2024-01-01 00:00:00+00'),
		(4, 'x', 'y', 7, null),
		(5, null, 'z', null, '2025-01-01 00:00:00+00')) v(id, a, b, c, d) order by id`)
	if err != nil {
		itemNullPositions.fatalf(t, "Query: %v", err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var (
			id   int64
			a, b *string
			c    *int64
			d    *time.Time
		)
		if err := rows.Scan(&id, &a, &b, &c, &d); err != nil {
			itemNullPositions.fatalf(t, "Scan: %v", err)
		}
		ds := "<nil>"
		if d != nil {
			ds = d.UTC().Format("2006")
		}
		got = append(got, fmt.Sprintf("%d %s %s %s %s", id, show(a), show(b), show(c), ds))
	}
	if err := rows.Err(); err != nil {
		itemNullPositions.fatalf(t, "Rows.Err: %v", err)
	}
	want := []string{"1 <nil> b <nil> <nil>", "2 a <nil> 5 <nil>", "3 <nil> <nil> <nil> 2024", "4 x y 7 <nil>", "5 <nil> z <nil> 2025"}
	if !reflect.DeepEqual(got, want) {
		itemNullPositions.errorf(t, "rows scanned as\n      %s\n    want\n      %s", strings.Join(got, "\n      "), strings.Join(want, "\n      "))
	}
}

func (s *suite) testBytesCopied(t *testing.T) {
	t.Parallel()
	e := s.setup(t)
	const n = 300
	rows, err := e.db.Query(e.ctx, `select ('{"n": ' || g || ', "pad": "' || repeat(chr(65 + g % 26), 100 + g) || '"}')::json,
		('{"m": ' || g || '}')::jsonb from generate_series(1, $1::int4) g`, int32(n))
	if err != nil {
		itemBytesCopied.fatalf(t, "Query: %v", err)
	}
	var js, jbs [][]byte
	for rows.Next() {
		var j, jb []byte
		if err := rows.Scan(&j, &jb); err != nil {
			itemBytesCopied.fatalf(t, "Scan: %v", err)
		}
		js, jbs = append(js, j), append(jbs, jb)
	}
	if err := rows.Err(); err != nil {
		itemBytesCopied.fatalf(t, "Rows.Err: %v", err)
	}
	rows.Close()
	if len(js) != n {
		itemBytesCopied.fatalf(t, "got %d rows, want %d", len(js), n)
	}
	for i := range js {
		g := i + 1
		want := fmt.Sprintf(`{"n": %d, "pad": "%s"}`, g, strings.Repeat(string(rune('A'+g%26)), 100+g))
		if !bytes.Equal(js[i], []byte(want)) {
			itemBytesCopied.fatalf(t, "row %d's json, kept across Next and Close, now reads %.60q..., want %.60q...", g, js[i], want)
		}
		if !sameJSON(jbs[i], fmt.Sprintf(`{"m": %d}`, g)) {
			itemBytesCopied.fatalf(t, "row %d's jsonb, kept across Next and Close, now reads %q", g, jbs[i])
		}
	}
}

func (s *suite) testRowsAffected(t *testing.T) {
	t.Parallel()
	e := s.setup(t)
	table := quoteIdent(e.newSchema()) + ".t"
	e.exec(itemSetup, `create table `+table+` (id int8 primary key, v text)`)
	for _, c := range []struct {
		sql  string
		args []any
		want int64
	}{
		{`insert into ` + table + ` select g, 'a' from generate_series(1, $1::int4) g`, []any{int32(5)}, 5},
		{`update ` + table + ` set v = $1 where id = any($2::int8[])`, []any{"b", []int64{1, 2, 99}}, 2},
		{`delete from ` + table + ` where id > $1`, []any{int64(3)}, 2},
		{`delete from ` + table + ` where id = any($1::int8[])`, []any{[]int64{}}, 0},
		{`update ` + table + ` set v = 'c'`, nil, 3},
	} {
		n, err := e.db.Exec(e.ctx, c.sql, c.args...)
		if err != nil {
			itemRowsAffected.fatalf(t, "Exec(%s): %v", short(c.sql), err)
		}
		if n != c.want {
			itemRowsAffected.errorf(t, "Exec(%s) reported %d rows affected, want %d", short(c.sql), n, c.want)
		}
	}
}

// sqlState is what core does: errors.As to an interface.
func sqlState(err error) string {
	var s interface{ SQLState() string }
	if errors.As(err, &s) {
		return s.SQLState()
	}
	return ""
}

// errorOf runs a statement expected to fail and returns the error, from
// Exec, or from Query, Rows.Next, Err or Close.
func errorOf(ctx context.Context, ex core.Executor, exec bool, sql string, args ...any) error {
	if exec {
		_, err := ex.Exec(ctx, sql, args...)
		return err
	}
	rows, err := ex.Query(ctx, sql, args...)
	if err != nil {
		return err
	}
	for rows.Next() {
	}
	return errors.Join(rows.Err(), rows.Close())
}

func (s *suite) testSQLState(t *testing.T) {
	t.Parallel()
	e := s.setup(t)
	schema := quoteIdent(e.newSchema())
	e.exec(itemSetup, `create table `+schema+`.u (id int8 primary key)`)
	e.exec(itemSetup, `insert into `+schema+`.u values (1)`)
	for _, c := range []struct {
		what  string
		exec  bool
		sql   string
		args  []any
		state string
		msg   string
	}{
		{"division by zero in Exec", true, `select 1 / $1::int4`, []any{int32(0)}, "22012", "division by zero"},
		{"division by zero in Query", false, `select 1 / $1::int4`, []any{int32(0)}, "22012", "division by zero"},
		{"unique violation in Exec", true, `insert into ` + schema + `.u values ($1)`, []any{int64(1)}, "23505", "duplicate key"},
		{"missing table in Query", false, `select * from ` + schema + `.missing where 1 = $1`, []any{int64(1)}, "42P01", "does not exist"},
		{"missing table in Exec without arguments", true, `delete from ` + schema + `.missing`, nil, "42P01", "does not exist"},
		{"syntax error", false, `selec 1`, nil, "42601", "syntax error"},
		{"raised in a function", true, `do $$ begin raise exception 'custom failure' using errcode = 'P0001'; end $$`, nil, "P0001", "custom failure"},
	} {
		err := errorOf(e.ctx, e.db, c.exec, c.sql, c.args...)
		switch {
		case err == nil:
			itemSQLState.errorf(t, "%s: no error", c.what)
		case sqlState(err) != c.state:
			itemSQLState.errorf(t, "%s: errors.As(err, &interface{ SQLState() string }) gives %q, want %q (err is %T: %v)",
				c.what, sqlState(err), c.state, err, err)
		case !strings.Contains(err.Error(), c.msg):
			itemSQLState.errorf(t, "%s: the message %q lost the server's %q", c.what, err.Error(), c.msg)
		}
	}
	// Inside a transaction too.
	tx, err := e.db.Begin(e.ctx)
	if err != nil {
		itemTx.fatalf(t, "Begin: %v", err)
	}
	defer tx.Rollback(context.WithoutCancel(e.ctx))
	if err := errorOf(e.ctx, tx, true, `insert into `+schema+`.u values ($1)`, int64(1)); sqlState(err) != "23505" {
		itemSQLState.errorf(t, "unique violation in a Transaction's Exec: SQLState %q, want 23505 (err %T: %v)", sqlState(err), err, err)
	}
}

func (s *suite) testRecovery(t *testing.T) {
	t.Parallel()
	e := s.setup(t)
	table := quoteIdent(e.newSchema()) + ".r"
	e.exec(itemSetup, `create table `+table+` (id int8 primary key)`)
	for i := range 10 { // more failures than a small pool has connections
		_ = errorOf(e.ctx, e.db, i%2 == 0, `select 1 / $1::int4`, int32(0))
	}
	var one int64
	if err := queryRow(e.ctx, e.db, `select $1::int8`, []any{int64(1)}, &one); err != nil || one != 1 {
		itemRecovery.fatalf(t, "after ten failed statements, select 1 gives %d, %v", one, err)
	}

	tx, err := e.db.Begin(e.ctx)
	if err != nil {
		itemTx.fatalf(t, "Begin: %v", err)
	}
	mustExec(t, e.ctx, tx, itemTx, `insert into `+table+` values (1)`)
	if err := errorOf(e.ctx, tx, true, `insert into `+table+` values (1)`); err == nil {
		itemRecovery.fatalf(t, "a duplicate insert in a Transaction did not fail")
	}
	if err := errorOf(e.ctx, tx, false, `select 1`); sqlState(err) != "25P02" {
		itemRecovery.errorf(t, "a statement after a failed one in the same Transaction: want SQLSTATE 25P02 (in failed transaction), got %q: %v", sqlState(err), err)
	}
	var rbErr error
	within(t, itemRecovery, promptly, "Rollback of a failed Transaction", func() { rbErr = tx.Rollback(e.ctx) })
	if rbErr != nil {
		itemRecovery.errorf(t, "Rollback of a failed Transaction: %v", rbErr)
	}
	if n := e.count(itemRecovery, `select count(*) from `+table); n != 0 {
		itemTx.errorf(t, "after Rollback the table has %d rows, want 0", n)
	}
}

func (s *suite) testRowsLifecycle(t *testing.T) {
	t.Parallel()
	e := s.setup(t)
	rows, err := e.db.Query(e.ctx, `select g from generate_series(1, 3) g`)
	if err != nil {
		itemRows.fatalf(t, "Query: %v", err)
	}
	var got []int32
	for rows.Next() {
		var g int32
		if err := rows.Scan(&g); err != nil {
			itemRows.fatalf(t, "Scan: %v", err)
		}
		got = append(got, g)
	}
	if !reflect.DeepEqual(got, []int32{1, 2, 3}) {
		itemRows.errorf(t, "read %v, want [1 2 3]", got)
	}
	for i := range 2 {
		if err := rows.Close(); err != nil {
			itemRows.errorf(t, "Close #%d after reading every row: %v", i+1, err)
		}
	}
	if err := rows.Err(); err != nil {
		itemRows.errorf(t, "Err after Close: %v", err)
	}
	// Closed early, many times, on more Rows than a pool has connections:
	// each must give its connection back.
	for i := range 12 {
		// Bounded: a pool whose connections are never given back makes
		// Query wait for one.
		ctx, cancel := context.WithTimeout(e.ctx, lim(t).wait)
		defer cancel()
		rows, err := e.db.Query(ctx, `select g from generate_series(1, 10000) g`)
		if err != nil {
			itemRows.fatalf(t, "Query #%d after closing earlier Rows early: %v (are connections given back on Close?)", i+1, err)
		}
		if !rows.Next() {
			itemRows.fatalf(t, "no first row: %v", rows.Err())
		}
		var closeErr error
		within(t, itemRows, promptly, "Close before the last row", func() { closeErr = rows.Close() })
		if closeErr != nil {
			itemRows.errorf(t, "Close before the last row: %v", closeErr)
		}
		if rows.Next() {
			itemRows.fatalf(t, "Next returned true after Close")
		}
	}
	// An error after some rows.
	rows, err = e.db.Query(e.ctx, `select 10 / (3 - g) from generate_series(1, 5) g`)
	if err == nil {
		n := 0
		for rows.Next() {
			n++
		}
		err = errors.Join(rows.Err(), rows.Close())
	}
	if sqlState(err) != "22012" {
		itemRows.errorf(t, "a division by zero at the third row: Query, Err and Close gave %v, want an error with SQLSTATE 22012", err)
	}
}

// A result larger than any fetch size or buffer is read to its end: every
// row, in order, none twice.
func (s *suite) testLargeResult(t *testing.T) {
	t.Parallel()
	e := s.setup(t)
	const n = 50000
	for _, where := range []struct {
		name string
		ex   func() (core.Executor, func())
	}{
		{"Database", func() (core.Executor, func()) { return e.db, func() {} }},
		{"Transaction", func() (core.Executor, func()) {
			tx, err := e.db.Begin(e.ctx)
			if err != nil {
				itemTx.fatalf(t, "Begin: %v", err)
			}
			return tx, func() { _ = tx.Rollback(e.ctx) }
		}},
	} {
		ex, done := where.ex()
		rows, err := ex.Query(e.ctx, `select g, repeat('x', g % 97) from generate_series(1, $1::int4) g`, int32(n))
		if err != nil {
			itemRows.fatalf(t, "%s: Query of %d rows: %v", where.name, n, err)
		}
		var count, next int64
		for rows.Next() {
			var g int64
			var pad string
			if err := rows.Scan(&g, &pad); err != nil {
				rows.Close()
				itemRows.fatalf(t, "%s: Scan of row %d: %v", where.name, count+1, err)
			}
			count++
			if g != count || len(pad) != int(g%97) {
				next = g
				break
			}
		}
		err = errors.Join(rows.Err(), rows.Close())
		done()
		switch {
		case err != nil:
			itemRows.errorf(t, "%s: reading %d rows: %v", where.name, n, err)
		case next != 0:
			itemRows.errorf(t, "%s: row %d of a %d-row result reads g = %d: rows are skipped or repeated", where.name, count, n, next)
		case count != n:
			itemRows.errorf(t, "%s: Next returned false after %d rows of a %d-row result (Err nil): the rest of the result was lost", where.name, count, n)
		}
	}
}

// Rows closed before their end give their connection back: the backend
// that was sending them goes idle rather than waiting for a reader forever.
func (s *suite) testRowsCloseReleases(t *testing.T) {
	t.Parallel()
	e := s.setup(t)
	watcher := e.other()
	// About 11 MB: more than socket buffers hold, so the server is still
	// sending when Close is called.
	rows, err := e.db.Query(e.ctx, `select pg_backend_pid(), repeat('x', 100) from generate_series(1, 100000)`)
	if err != nil {
		itemRows.fatalf(t, "Query: %v", err)
	}
	var pid int32
	var pad string
	if !rows.Next() {
		itemRows.fatalf(t, "no first row: %v", rows.Err())
	}
	if err := rows.Scan(&pid, &pad); err != nil {
		itemRows.fatalf(t, "Scan: %v", err)
	}
	within(t, itemRows, lim(t).wait, "Rows.Close before the last of 100000 rows", func() { _ = rows.Close() })
	var state string
	eventually(t, itemRows, fmt.Sprintf("the backend that sent the closed Rows (pid %d) to go idle: "+
		"Rows.Close did not release its connection (the server is still sending the rest of the result, "+
		"or the connection is still checked out)", pid), func() bool {
		err := queryRow(e.ctx, watcher, `select coalesce((select state from pg_stat_activity where pid = $1), 'gone')`, []any{pid}, &state)
		if err != nil {
			itemRows.fatalf(t, "read pg_stat_activity: %v", err)
		}
		return state == "idle" || state == "gone"
	})
}

// txEnded checks that the backend of a Transaction that was committed or
// rolled back is no longer in a transaction.
func txEnded(t *testing.T, e *env, other core.Database, pid int32, how string) {
	t.Helper()
	var state string
	deadline := time.Now().Add(lim(t).wait)
	for {
		if err := queryRow(e.ctx, other, `select coalesce((select state from pg_stat_activity where pid = $1), 'gone')`, []any{pid}, &state); err != nil {
			itemTx.fatalf(t, "read pg_stat_activity: %v", err)
		}
		if state == "idle" || state == "gone" {
			return
		}
		if time.Now().After(deadline) {
			itemTx.fatalf(t, "after %s returned, the Transaction's backend (pid %d) is still %q, not idle: %s did not end "+
				"the transaction on the server (its locks are held and its connection is not given back)", how, pid, state, how)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (s *suite) testTransactions(t *testing.T) {
	t.Parallel()
	e := s.setup(t)
	table := quoteIdent(e.newSchema()) + ".tx"
	e.exec(itemSetup, `create table `+table+` (id int8)`)
	other := e.other()
	countOutside := func() int64 {
		var n int64
		if err := queryRow(e.ctx, other, `select count(*) from `+table, nil, &n); err != nil {
			itemTx.fatalf(t, "count from another Database: %v", err)
		}
		return n
	}

	for _, commit := range []bool{true, false} {
		e.exec(itemSetup, `truncate `+table)
		tx, err := e.db.Begin(e.ctx)
		if err != nil {
			itemTx.fatalf(t, "Begin: %v", err)
		}
		if n := mustExec(t, e.ctx, tx, itemTx, `insert into `+table+` values ($1), ($2)`, int64(1), int64(2)); n != 2 {
			itemRowsAffected.errorf(t, "insert in a Transaction reported %d rows affected, want 2", n)
		}
		// One session, one transaction: a transaction-local setting and the
		// backend pid carry over from statement to statement.
		var pid1, pid2 int32
		var setting *string
		if err := queryRow(e.ctx, tx, `select pg_backend_pid(), set_config('gwconf.x', $1, true)`, []any{"v"}, &pid1, &setting); err != nil {
			itemTx.fatalf(t, "Query in a Transaction: %v", err)
		}
		if err := queryRow(e.ctx, tx, `select pg_backend_pid(), current_setting('gwconf.x', true)`, nil, &pid2, &setting); err != nil {
			itemTx.fatalf(t, "Query in a Transaction: %v", err)
		}
		if pid1 != pid2 || setting == nil || *setting != "v" {
			itemTx.fatalf(t, "two statements of one Transaction ran in backends %d and %d (transaction-local setting %v): not one session", pid1, pid2, show(setting))
		}
		var inside int64
		if err := queryRow(e.ctx, tx, `select count(*) from `+table, nil, &inside); err != nil || inside != 2 {
			itemTx.fatalf(t, "the Transaction sees %d of its 2 rows (%v)", inside, err)
		}
		if n := countOutside(); n != 0 {
			itemTx.fatalf(t, "another Database sees %d rows before Commit, want 0", n)
		}
		if commit {
			if err := tx.Commit(e.ctx); err != nil {
				itemTx.fatalf(t, "Commit: %v", err)
			}
			if n := countOutside(); n != 2 {
				itemTx.errorf(t, "after Commit another Database sees %d rows, want 2", n)
			}
			txEnded(t, e, other, pid1, "Commit")
		} else {
			if err := tx.Rollback(e.ctx); err != nil {
				itemTx.fatalf(t, "Rollback: %v", err)
			}
			if n := countOutside(); n != 0 {
				itemTx.errorf(t, "after Rollback another Database sees %d rows, want 0", n)
			}
			txEnded(t, e, other, pid1, "Rollback")
			// Undone, not merely unseen: the table can be truncated at once,
			// which waits for any transaction still holding it.
			lockCtx, cancel := context.WithTimeout(e.ctx, lim(t).wait)
			_, err := other.Exec(lockCtx, `truncate `+table)
			cancel()
			if err != nil {
				itemTx.errorf(t, "after Rollback, truncate from another Database: %v (a transaction still holds the table)", err)
			}
		}
	}
}

// testCancel cancels statements in flight and checks they return
// promptly and stop on the server.
//
// Nothing here waits for a fixed time, and the bounds follow the server's
// pace, so that a loaded machine does not fail a driver: the statement
// sleeps past the test's deadline (so it can only have stopped on the
// server because it was cancelled), the wait for it to start is bounded
// by the test's context only, the cancelled call must return within
// promptly plus twice the time the statement took to start (a cancel
// request is a new connection the server must take), and the wait for it
// to stop on the server gets three Timeouts plus that margin.
func (s *suite) testCancel(t *testing.T) {
	t.Parallel()
	e := s.setup(t)
	watcher := e.other()
	active := func(tag string) int64 {
		t.Helper()
		var n int64
		err := queryRow(e.ctx, watcher, `select count(*) from pg_stat_activity
			where pid <> pg_backend_pid() and state = 'active' and strpos(query, $1) > 0`, []any{tag}, &n)
		if err != nil {
			itemCancel.fatalf(t, "read pg_stat_activity: %v", err)
		}
		return n
	}
	deadline, _ := e.ctx.Deadline()
	sleep := int((time.Until(deadline)+s.lim.wait)/time.Second) + 1
	// run starts a long statement, waits until the server runs it (a
	// cancel request that arrives before is ignored by the server), then
	// cancels its context.
	run := func(what string, ex core.Executor, exec bool) {
		t.Helper()
		tag := "gwconf_cancel_" + randomHex(6)
		sql := fmt.Sprintf(`select pg_sleep(%d) /* %s */`, sleep, tag)
		ctx, cancel := context.WithCancel(e.ctx)
		defer cancel()
		errc := make(chan error, 1)
		begin := time.Now()
		go func() { errc <- errorOf(ctx, ex, exec, sql) }()
		for pause := time.Millisecond; active(tag) == 0; pause = min(2*pause, 50*time.Millisecond) {
			select {
			case err := <-errc:
				itemCancel.fatalf(t, "%s: select pg_sleep(%d) returned before it was cancelled: %v", what, sleep, err)
			case <-e.ctx.Done():
				itemCancel.fatalf(t, "%s: select pg_sleep(%d) had not started on the server when the test's time ran out (%v)", what, sleep, e.ctx.Err())
			case <-time.After(pause):
			}
		}
		started := time.Since(begin)
		cancel()
		bound := promptly + 2*started
		select {
		case err := <-errc:
			if err == nil {
				itemCancel.errorf(t, "%s: select pg_sleep(%d), cancelled while running, returned no error", what, sleep)
			}
		case <-time.After(bound):
			itemCancel.fatalf(t, "%s: select pg_sleep(%d), cancelled while running, had not returned %v later "+
				"(%v, and twice the %v it took to start on the server)", what, sleep, bound.Round(100*time.Millisecond),
				promptly, started.Round(time.Millisecond))
		}
		// A driver may stop the statement after it returned, with a cancel
		// request on a new connection (pgx does): on a loaded server that
		// connection can take a while. A driver that never stops it still
		// fails: the statement sleeps for longer than this.
		stopBy := time.Now().Add(3*s.lim.wait + 2*started)
		for pause := time.Millisecond; active(tag) > 0; pause = min(2*pause, 50*time.Millisecond) {
			if time.Now().After(stopBy) {
				itemCancel.fatalf(t, "%s: select pg_sleep(%d), cancelled %v ago, still runs on the server: the driver returned "+
					"but did not stop the statement", what, sleep, time.Since(begin.Add(started)).Round(100*time.Millisecond))
			}
			select {
			case <-e.ctx.Done():
				itemCancel.fatalf(t, "%s: the test's time ran out waiting for the cancelled statement to stop on the server", what)
			case <-time.After(pause):
			}
		}
	}
	run("Exec", e.db, true)
	run("Query", e.db, false)

	// An already cancelled context.
	done, cancel := context.WithCancel(e.ctx)
	cancel()
	var doneErr error
	within(t, itemCancel, promptly, "Exec with a cancelled context", func() { _, doneErr = e.db.Exec(done, `select 1`) })
	if doneErr == nil {
		itemCancel.errorf(t, "Exec with an already cancelled context succeeded")
	}

	// The Database is usable afterwards.
	var one int64
	if err := queryRow(e.ctx, e.db, `select $1::int8`, []any{int64(1)}, &one); err != nil || one != 1 {
		itemCancel.fatalf(t, "after the cancellations, select 1 gives %d, %v", one, err)
	}

	// In a Transaction.
	tx, err := e.db.Begin(e.ctx)
	if err != nil {
		itemTx.fatalf(t, "Begin: %v", err)
	}
	run("Exec in a Transaction", tx, true)
	within(t, itemCancel, promptly, "Rollback after a cancelled statement", func() { _ = tx.Rollback(e.ctx) })
	if err := queryRow(e.ctx, e.db, `select $1::int8`, []any{int64(1)}, &one); err != nil || one != 1 {
		itemCancel.fatalf(t, "after a cancelled Transaction, select 1 gives %d, %v", one, err)
	}
}

// Goroutines use one Database at once, each round with an Exec and a
// Transaction that commits (even rounds) or rolls back (odd rounds), and
// read their own rows back: a driver that mixes up the calls' arguments,
// or runs concurrent statements in one session (so that they land in each
// other's transactions), leaves rows that are not what each goroutine
// wrote.
func (s *suite) testConcurrency(t *testing.T) {
	t.Parallel()
	e := s.setup(t)
	table := quoteIdent(e.newSchema()) + ".c"
	e.exec(itemSetup, `create table `+table+` (g int8, i int8, v text)`)
	const goroutines, rounds = 8, 15
	var wg sync.WaitGroup
	type failure struct {
		g, i int64
		err  error
	}
	failures := make(chan failure, goroutines)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				if err := concurrentRound(e.ctx, e.db, table, int64(g), int64(i)); err != nil {
					failures <- failure{int64(g), int64(i), err}
					return
				}
			}
		}()
	}
	wg.Wait()
	close(failures)
	failed := false
	for f := range failures {
		failed = true
		msg := fmt.Sprintf("goroutine %d round %d: %v", f.g, f.i, f.err)
		var mismatch *roundMismatch
		if !errors.As(f.err, &mismatch) {
			// Run alone, the same round (for a goroutine of its own)
			// tells a failure of concurrent use from one of the round.
			if concurrentRound(e.ctx, e.db, table, goroutines+f.g, f.i) == nil {
				msg += " (the same round, run alone afterwards, succeeds: calls made at once interfere in the driver, " +
					"through shared arguments, a shared connection or a shared transaction)"
			}
		}
		itemConcurrency.errorf(t, "%s", msg)
	}
	// Each goroutine stops at its first failure: count only after none.
	want := int64(goroutines * (rounds + (rounds+1)/2))
	if n := e.count(itemConcurrency, `select count(*) from `+table); !failed && n != want {
		itemConcurrency.errorf(t, "%d rows after %d goroutines ran %d rounds (an Exec, and a Transaction committed every other round), want %d",
			n, goroutines, rounds, want)
	}
}

// concurrentRound inserts a row with Exec and another in a Transaction,
// which it commits in even rounds and rolls back in odd ones, and reads
// its rows back.
func concurrentRound(ctx context.Context, db core.Database, table string, g, i int64) error {
	v := fmt.Sprintf("g%d-i%d", g, i)
	commit := i%2 == 0
	if _, err := db.Exec(ctx, `insert into `+table+` values ($1, $2, $3)`, g, i, v); err != nil {
		return err
	}
	tx, err := db.Begin(ctx)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `insert into `+table+` values ($1, $2, $3)`, g, -i-1, v); err != nil {
		tx.Rollback(ctx)
		return err
	}
	end, how := tx.Commit, "committed"
	if !commit {
		end, how = tx.Rollback, "rolled back"
	}
	if err := end(ctx); err != nil {
		return fmt.Errorf("%s: %w", how, err)
	}
	rows, err := db.Query(ctx, `select i, v from `+table+` where g = $1 and i = any($2::int8[]) order by i`, g, []int64{i, -i - 1})
	if err != nil {
		return err
	}
	var got []string
	crossed := false
	for rows.Next() {
		var n int64
		var s string
		if err := rows.Scan(&n, &s); err != nil {
			rows.Close()
			return err
		}
		got = append(got, fmt.Sprintf("%d:%s", n, s))
		crossed = crossed || !strings.HasPrefix(s, fmt.Sprintf("g%d-", g))
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return err
	}
	want := []string{fmt.Sprintf("%d:%s", i, v)}
	if commit {
		want = []string{fmt.Sprintf("%d:%s", -i-1, v), fmt.Sprintf("%d:%s", i, v)}
	}
	if reflect.DeepEqual(got, want) {
		return nil
	}
	if !crossed {
		// Values of this goroutine stored under another's g or i, or a
		// row stored twice (a statement sent another's arguments)? Asked
		// without arguments, which could cross again.
		var misplaced int64
		q := fmt.Sprintf(`select (select count(*) from %s where v = '%s' and (g, i) not in ((%d, %d), (%d, %d)))
			+ (select count(*) from (select from %s group by g, i, v having count(*) > 1) twice)`, table, v, g, i, g, -i-1, table)
		crossed = queryRow(ctx, db, q, nil, &misplaced) == nil && misplaced > 0
	}
	why := "a write was lost, or a rolled-back one kept: concurrent statements interfered, most likely by running in each other's " +
		"transactions (one session for all callers, or a Transaction whose statements run on the pool)"
	if crossed {
		why = "this goroutine's rows hold another goroutine's values: concurrent statements sent each other's arguments"
	}
	return &roundMismatch{fmt.Sprintf("after an Exec and a Transaction it %s, read back %v, want %v: %s", how, got, want, why)}
}

// roundMismatch is a concurrent round that ran without error but read
// back other rows than it wrote.
type roundMismatch struct{ msg string }

func (m *roundMismatch) Error() string { return m.msg }
