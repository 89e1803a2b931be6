package cronspec

import (
	"math"
	"strings"
	"testing"
)

// The expected texts are what Node's String(x) and JSON.stringify give.
func TestFormatJSNumber(t *testing.T) {
	t.Parallel()
	tenth := 0.1 // a variable, so that 0.1+0.2 is computed in doubles
	for _, tc := range []struct {
		f    float64
		want string
	}{
		{0, "0"},
		{math.Copysign(0, -1), "0"},
		{1, "1"},
		{-1.5, "-1.5"},
		{100, "100"},
		{1234.5678, "1234.5678"},
		{tenth + 0.2, "0.30000000000000004"},
		{1e20, "100000000000000000000"},
		{123e18, "123000000000000000000"},
		{1e21, "1e+21"},
		{1.234e21, "1.234e+21"},
		{0.000001, "0.000001"},
		{0.00001234, "0.00001234"},
		{1e-7, "1e-7"},
		{1.5e-10, "1.5e-10"},
		{5e-324, "5e-324"},
		{math.MaxFloat64, "1.7976931348623157e+308"},
		{1 << 53, "9007199254740992"},
		{12345678901234567890, "12345678901234567000"},
	} {
		if got := formatJSNumber(tc.f); got != tc.want {
			t.Errorf("formatJSNumber(%v) = %q, want %q", tc.f, got, tc.want)
		}
	}
}

func TestParseJSON5(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, want, wantErr string
	}{
		{in: "{a:1, // comment\n b:2}", want: `{"a":1,"b":2}`},
		{in: "{a:1, // ends at U+2028\u2028 b:2}", want: `{"a":1,"b":2}`},
		{in: "{a:'one \\\ntwo \\\r\nthree'}", want: `{"a":"one two three"}`},
		{in: "{a:'\u2028'}", want: "{\"a\":\"\u2028\"}"},
		{in: "{a:'tab\there'}", want: `{"a":"tab\there"}`},
		{in: "\ufeff\u00a0{a:\t1}\u3000", want: `{"a":1}`},
		{in: `{"__proto__": 1}`, want: `{"__proto__":1}`},
		{in: `{"4294967294": 1, "4294967295": 2, "0": 3}`, want: `{"0":3,"4294967294":1,"4294967295":2}`},
		{in: `{a:1.e5, b:0.5e+3, c:-.5, d:0X1f, e:+0x1}`, want: `{"a":100000,"b":500,"c":-0.5,"d":31,"e":1}`},
		{in: `{a:0x1fffffffffffff1}`, want: `{"a":144115188075855860}`},
		{in: `{ab$_c:1, ǅ:2, x\u0031:3}`, want: `{"ab$_c":1,"ǅ":2,"x1":3}`},
		{in: `{a:"\0"}`, want: `{"a":"\u0000"}`},
		{in: `{a:"\01"}`, wantErr: `invalid escape \0 followed by a digit`},
		{in: `{a:"\x4"}`, wantErr: `unexpected '"'; expected a hex digit`},
		{in: `{a:"\u{1F600}"}`, wantErr: `unexpected '{'; expected a hex digit`},
		{in: `{a:"x` + "\n" + `"}`, wantErr: `line break in string; write it as \n`},
		{in: `{a:.e1}`, wantErr: `unexpected 'e'; expected a digit`},
		{in: `{a:1e}`, wantErr: `unexpected '}'; expected a digit in the exponent`},
		{in: `{a:00.5}`, wantErr: `number has a leading zero`},
		{in: `{a:Infinityx}`, wantErr: `Infinity and NaN cannot be stored in JSON`},
		{in: `{a:truex}`, wantErr: `unexpected 'x'; expected ',' or '}'`},
		{in: `{\u0031:1}`, wantErr: `unexpected '\\'; expected a key (a name or a quoted string)`},
		{in: `{a\u002e:1}`, wantErr: `escape in key is not a name character`},
		{in: `{a 1}`, wantErr: `unexpected '1'; expected ':' after the key`},
		{in: `[1 2]`, wantErr: `unexpected '2'; expected ',' or ']'`},
		{in: strings.Repeat("[", maxJSONDepth+1), wantErr: "payload nested more than 500 levels deep"},
	} {
		got, err := parseJSON5(tc.in)
		switch {
		case tc.wantErr != "":
			if err == nil || err.msg != tc.wantErr {
				t.Errorf("parseJSON5(%q) = %s, %+v; want error %q", tc.in, got, err, tc.wantErr)
			}
		case err != nil:
			t.Errorf("parseJSON5(%q): %s", tc.in, err.msg)
		case string(got) != tc.want:
			t.Errorf("parseJSON5(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestParseJSON5DeepButAllowed(t *testing.T) {
	t.Parallel()
	in := strings.Repeat("[", maxJSONDepth) + strings.Repeat("]", maxJSONDepth)
	got, err := parseJSON5(in)
	if err != nil || string(got) != in {
		t.Fatalf("parseJSON5(depth %d) = %.20s..., %+v", maxJSONDepth, got, err)
	}
}
