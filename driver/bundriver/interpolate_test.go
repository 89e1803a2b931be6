package bundriver

import (
	"database/sql/driver"
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestInterpolateReplacesOnlyParameters(t *testing.T) {
	t.Parallel()
	ten := make([]any, 10)
	for i := range ten {
		ten[i] = int64(i + 1)
	}
	for _, c := range []struct {
		name  string
		query string
		args  []any
		want  string
	}{
		{"no arguments: text unchanged", `select '$1', $1`, nil, `select '$1', $1`},
		{"plain", `select $1, $2::text`, []any{int64(1), "a"}, `select 1, E'a'::text`},
		{"$10 is not $1 then 0", `select $10, $1`, ten, `select 10, 1`},
		{"string literal", `select '$1 ''$2''', $1`, []any{true}, `select '$1 ''$2''', true`},
		{"escape string", `select E'it\'s $1', e'\\', $1`, []any{false}, `select E'it\'s $1', e'\\', false`},
		{"not an escape string", `select type'$1', $1`, []any{int64(2)}, `select type'$1', 2`},
		{"quoted identifier", `select "a $1 ""b"" '$2" from t where x = $1`, []any{int64(3)}, `select "a $1 ""b"" '$2" from t where x = 3`},
		{"dollar quote", `select $$ it's $1 $$, $q$ $1 $$ $q$, $1`, []any{int64(4)}, `select $$ it's $1 $$, $q$ $1 $$ $q$, 4`},
		{"line comment", "select $1 -- it's $2\n, $2", []any{int64(5), int64(6)}, "select 5 -- it's $2\n, 6"},
		{"nested block comment", `select /* a /* it's $1 */ $2 */ $1`, []any{int64(7)}, `select /* a /* it's $1 */ $2 */ 7`},
		{"identifier with a dollar", `select a$1, $1`, []any{int64(8)}, `select a$1, 8`},
		{"jsonb operators", `select j ?| $1, j ? 'a', j ?& $1`, []any{[]string{"x"}}, `select j ?| E'{"x"}'::text[], j ? 'a', j ?& E'{"x"}'::text[]`},
		{"after a minus", `select 1-$1`, []any{int64(-1)}, `select 1-(-1)`},
		{"unterminated string", `select $1, 'abc`, []any{int64(9)}, `select 9, 'abc`},
	} {
		got, err := interpolate(c.query, c.args)
		if err != nil || got != c.want {
			t.Errorf("%s: interpolate(%q) = %q, %v; want %q", c.name, c.query, got, err, c.want)
		}
	}
	for _, q := range []string{`select $2`, `select $0`} {
		if _, err := interpolate(q, []any{int64(1)}); err == nil {
			t.Errorf("interpolate(%q) with one argument: no error", q)
		}
	}
}

type valuer string

func (v valuer) Value() (driver.Value, error) { return string(v), nil }

func TestLiteral(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		v    any
		want string
	}{
		{nil, `NULL`},
		{"it's a \\ \"q\"", `E'it''s a \\ "q"'`},
		{"", `E''`},
		{json.RawMessage(`{"a": "it's"}`), `E'{"a": "it''s"}'`},
		{json.RawMessage(nil), `NULL`},
		{[]byte{0xde, 0xad}, `'\xdead'::bytea`},
		{int16(-3), `(-3)`},
		{int32(7), `7`},
		{int64(math.MinInt64), `(-9223372036854775807-1)`},
		{uint64(math.MaxUint64), `18446744073709551615`},
		{0.1, `'0.1'::float8`},
		{math.Inf(-1), `'-Infinity'::float8`},
		{math.NaN(), `'NaN'::float8`},
		{time.Date(2024, 2, 29, 23, 59, 58, 123456789, time.FixedZone("", 5*3600+30*60)), `'2024-02-29 18:29:58.123456+00'::timestamptz`},
		{time.Date(0, 3, 1, 0, 0, 0, 0, time.UTC), `'0001-03-01 00:00:00+00 BC'::timestamptz`},
		{[]string{"a", `b"c`, `d\e`, "", "NULL"}, `E'{"a","b\\"c","d\\\\e","","NULL"}'::text[]`},
		{[]string{}, `E'{}'::text[]`},
		{[]string(nil), `NULL`},
		{[]int64{1, -2}, `'{1,-2}'::int8[]`},
		{[]int64(nil), `NULL`},
		{valuer("v"), `E'v'`},
	} {
		got, err := literal(c.v)
		if err != nil || got != c.want {
			t.Errorf("literal(%#v) = %s, %v; want %s", c.v, got, err, c.want)
		}
	}
	if _, err := literal("nul\x00"); err == nil {
		t.Error("a string with NUL: no error")
	}
	if _, err := literal(struct{}{}); err == nil || !strings.Contains(err.Error(), "struct {}") {
		t.Errorf("an unsupported type: %v", err)
	}
}

func TestParseArray(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in    string
		elems []string
		null  []bool
	}{
		{`{}`, []string{}, []bool{}},
		{`{a,"b c",NULL,"NULL",""}`, []string{"a", "b c", "NULL", "NULL", ""}, []bool{false, false, true, false, false}},
		{`{"a\"b","c\\d"}`, []string{`a"b`, `c\d`}, []bool{false, false}},
		{`[0:1]={1,2}`, []string{"1", "2"}, []bool{false, false}},
	} {
		elems, null, err := parseArray([]byte(c.in))
		if err != nil || !reflect.DeepEqual(elems, c.elems) || !reflect.DeepEqual(null, c.null) {
			t.Errorf("parseArray(%s) = %q, %v, %v; want %q, %v", c.in, elems, null, err, c.elems, c.null)
		}
	}
	for _, bad := range []string{``, `{`, `{"a}`, `{{1},{2}}`, `{"a"b}`, `x`} {
		if _, _, err := parseArray([]byte(bad)); err == nil {
			t.Errorf("parseArray(%q): no error", bad)
		}
	}
	if _, err := scanStrings(`{a,NULL}`); err == nil {
		t.Error("scanStrings with a NULL element: no error")
	}
	if got, err := scanInt64s([]byte(`{1,-9223372036854775808}`)); err != nil || !reflect.DeepEqual(got, []int64{1, math.MinInt64}) {
		t.Errorf("scanInt64s = %v, %v", got, err)
	}
}

func FuzzTextArrayRoundTrip(f *testing.F) {
	f.Add("a", `b"c`, "")
	f.Add("NULL", `\`, "{}")
	f.Fuzz(func(t *testing.T, a, b, c string) {
		in := []string{a, b, c}
		got, err := scanStrings(formatTextArray(in))
		if err != nil || !reflect.DeepEqual(got, in) {
			t.Fatalf("round trip of %q: %q, %v", in, got, err)
		}
	})
}

func FuzzInterpolate(f *testing.F) {
	f.Add(`select $1, '$1', "$1", $$ $1 $$, /* $1 */ $1 -- $1`)
	f.Add(`select E'\'$1' || $1`)
	f.Fuzz(func(t *testing.T, query string) {
		out, err := interpolate(query, []any{"x"})
		if err != nil {
			return
		}
		// Whatever the lexer decided, only whole parameters are replaced.
		if strings.Count(out, "E'x'") > strings.Count(query, "$1")+strings.Count(query, "E'x'") {
			t.Fatalf("interpolate(%q) = %q", query, out)
		}
	})
}
