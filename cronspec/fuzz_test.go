package cronspec

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// FuzzParse checks that Parse never panics, that its errors are well formed,
// and that a crontab it accepts is written by String in a form that parses
// back to equal entries (and is then a fixed point). The seed corpus is every
// line of the parse, format and builder tests plus some whole crontabs, so
// `go test` runs it as a normal test.
func FuzzParse(f *testing.F) {
	for _, tc := range parseCases(f) {
		f.Add(tc.line)
	}
	for _, tc := range formatCases {
		f.Add(tc.line)
	}
	f.Add("")
	f.Add("# comment\n\n  \t\r\n30 4 * * * a\r\n0 0 * * 0 b ?id=b2&tz=Europe/Paris {x: [1, 'two',],}\n")
	f.Add("* * * * * send\n* * * * * send\n")
	f.Add("*/7 1-3 13 2,4 5-7 a:b ?fill=1w&max=3&queue=q&priority=-2&jobKey=k%26&jobKeyMode=preserve_run_at\n* * * * * b {}")
	f.Add("0 2 * * * t ?tz=America/New_York\n30 * * * * u ?tz=Australia/Lord_Howe")

	after := time.Date(2025, 3, 29, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, text string) {
		c, err := Parse(text)
		if err != nil {
			var perr *ParseError
			if !errors.As(err, &perr) || len(perr.Errors) == 0 || c != nil {
				t.Fatalf("Parse(%q) returned %T %v with %d entries", text, err, err, len(c))
			}
			lines := strings.Count(text, "\n") + 1
			for _, le := range perr.Errors {
				if le.Line < 1 || le.Line > lines || le.Column < 1 || le.Msg == "" {
					t.Fatalf("Parse(%q): malformed %+v", text, le)
				}
			}
			return
		}
		for _, e := range c {
			if err := e.Validate(); err != nil {
				t.Fatalf("Parse(%q) gave an invalid entry %s: %v", text, describeEntry(e), err)
			}
			if e.Payload != nil && !json.Valid(e.Payload) {
				t.Fatalf("Parse(%q) gave invalid JSON %s", text, e.Payload)
			}
			if next := e.Schedule.Next(after); !next.IsZero() && (!next.After(after) || !e.Schedule.Matches(next)) {
				t.Fatalf("%s: Next(%v) = %v, which does not match", describeEntry(e), after, next)
			}
		}
		formatted := c.String()
		back, err := Parse(formatted)
		if err != nil {
			t.Fatalf("Parse(%q) ok, but its String %q does not parse: %v", text, formatted, err)
		}
		if len(back) != len(c) {
			t.Fatalf("round trip of %q: %d entries, want %d", text, len(back), len(c))
		}
		for i := range c {
			if !back[i].Equal(c[i]) {
				t.Fatalf("round trip of %q changed entry %d:\n%s\n%s", text, i, describeEntry(c[i]), describeEntry(back[i]))
			}
		}
		if again := back.String(); again != formatted {
			t.Fatalf("String is not a fixed point:\n%q\n%q", formatted, again)
		}
	})
}
