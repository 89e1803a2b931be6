package cronspec

import (
	"testing"
	"time"
)

// formatCases map a crontab line to the canonical line Entry.String writes.
var formatCases = []struct{ line, want string }{
	{"* * * * * t", "* * * * * t"},
	{"*/1 * 1-31 * 0-7 t", "* * * * * t"},
	{"0,15,30,45 * * * * t", "*/15 * * * * t"},
	{"0 */2 * * * t", "0 */2 * * * t"},
	{"*/60 * * * * t", "0 * * * * t"},
	{"1-31 * * * * t", "1-31 * * * * t"},
	{"0 0 * * 7 t", "0 0 * * 0 t"},
	{"0 0 * * 5-7 t", "0 0 * * 0,5-6 t"},
	{"0 0 * * 1,2,3,5 t", "0 0 * * 1-3,5 t"},
	{"0 0 1,2 1,3,5,7,9,11 * t", "0 0 1-2 */2 * t"},
	{"5,5,1-6 */23 * * * t", "1-6 */23 * * * t"},
	{"30 4 * * * send ?fill=1d24h", "30 4 * * * send ?fill=2d"},
	{"30 4 * * * send ?fill=0s", "30 4 * * * send"},
	{"30 4 * * * send ?fill=3h60m", "30 4 * * * send ?fill=4h"},
	{"30 4 * * * send ?id=send&max=25", "30 4 * * * send ?max=25"},
	{"30 4 * * * a/b ?tz=UTC&priority=0", "30 4 * * * a/b"},
	{"30 4 * * * t ?tz=Etc/GMT%2B5", "30 4 * * * t ?tz=Etc/GMT%2B5"},
	{"30 4 * * * t ?tz=America/Argentina/Buenos_Aires", "30 4 * * * t ?tz=America/Argentina/Buenos_Aires"},
	{"30 4 * * * t ?jobKeyMode=preserve_run_at&queue=q:1&jobKey=a+b%26c%25%C3%A9&id=x",
		"30 4 * * * t ?id=x&queue=q:1&jobKey=a%20b%26c%25%C3%A9&jobKeyMode=preserve_run_at"},
	{"30 4 * * * t ?jobKey=k&jobKeyMode=replace", "30 4 * * * t ?jobKey=k"},
	{"0 0 1 1 * t {b: 'x', a: [1, 2,], /* c */ 'c d': {e: 0x10}}", `0 0 1 1 * t {"b":"x","a":[1,2],"c d":{"e":16}}`},
	{`0 0 1 1 * t {s: "line\nbreak\u2028 \u00e9 \x00"}`, "0 0 1 1 * t {\"s\":\"line\\nbreak\u2028 é \\u0000\"}"},
}

func TestEntryStringRoundTrips(t *testing.T) {
	t.Parallel()
	for _, tc := range formatCases {
		t.Run(tc.line, func(t *testing.T) {
			t.Parallel()
			e := mustParse(t, tc.line)[0]
			got := e.String()
			if got != tc.want {
				t.Fatalf("String() = %q, want %q", got, tc.want)
			}
			back := mustParse(t, got)[0]
			if !back.Equal(e) {
				t.Fatalf("round trip changed the entry:\n%s\n%s", describeEntry(e), describeEntry(back))
			}
		})
	}
}

func TestCrontabString(t *testing.T) {
	t.Parallel()
	c := mustParse(t, "# daily\n30 4 * * * send ?fill=2h\n\n0 * * * * ping {a: 1}\n")
	want := "30 4 * * * send ?fill=2h\n0 * * * * ping {\"a\":1}\n"
	if got := c.String(); got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
	if got := (Crontab{}).String(); got != "" {
		t.Fatalf("empty crontab String() = %q", got)
	}
}

func TestBuiltEntryStringRoundTrips(t *testing.T) {
	t.Parallel()
	e, err := DailyAt(2, 30, "backup").
		TZ("America/New_York").
		Fill(90 * time.Minute).
		JobKey("backup & restore").
		Payload(map[string]any{"paths": []string{"/var", "/etc"}, "note": "50% \"done\""}).
		Entry()
	if err != nil {
		t.Fatal(err)
	}
	line := e.String()
	want := `30 2 * * * backup ?fill=1h30m&jobKey=backup%20%26%20restore&tz=America/New_York {"note":"50% \"done\"","paths":["/var","/etc"]}`
	if line != want {
		t.Fatalf("String() = %q\nwant %q", line, want)
	}
	if back := mustParse(t, line)[0]; !back.Equal(e) {
		t.Fatalf("round trip changed the entry:\n%s\n%s", describeEntry(e), describeEntry(back))
	}
}

func TestHandMadePayloadIsCompacted(t *testing.T) {
	t.Parallel()
	e := Entry{Identifier: "t", Task: "t", Schedule: daily(0, 0), Payload: []byte("{\n  \"a\": 1\n}")}
	if got, want := e.String(), `0 0 * * * t {"a":1}`; got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
}

func TestFormatFill(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		0:                  "0s",
		time.Second:        "1s",
		8 * 24 * time.Hour: "1w1d",
		14*24*time.Hour + time.Hour + 5*time.Second: "2w1h5s",
	} {
		if got := formatFill(d); got != want {
			t.Errorf("formatFill(%v) = %q, want %q", d, got, want)
		}
		if back, msg := parseFill(want); msg != "" || back != d {
			t.Errorf("parseFill(%q) = %v, %q; want %v", want, back, msg, d)
		}
	}
}
