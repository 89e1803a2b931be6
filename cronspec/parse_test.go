package cronspec

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

type entryMod func(*Entry)

func ent(task string, s Schedule, mods ...entryMod) *Entry {
	e := &Entry{Identifier: task, Task: task, Schedule: s, Line: 1}
	for _, m := range mods {
		m(e)
	}
	return e
}

func withID(id string) entryMod      { return func(e *Entry) { e.Identifier = id } }
func withOptions(o Options) entryMod { return func(e *Entry) { e.Options = o } }
func withPayload(p string) entryMod  { return func(e *Entry) { e.Payload = []byte(p) } }
func withZone(loc *time.Location) entryMod {
	return func(e *Entry) { e.Schedule.Location = loc }
}

func sched(minute, hour, dom, month, dow Set) Schedule {
	return Schedule{Minute: minute, Hour: hour, DayOfMonth: dom, Month: month, DayOfWeek: dow}
}

type parseCase struct {
	name    string
	line    string
	want    *Entry // nil when an error is expected
	wantErr string // the whole Error() text
}

// parseCases is the table of single crontab lines; FuzzParse uses the lines
// as its seed corpus.
func parseCases(t testing.TB) []parseCase {
	paris := mustZone(t, "Europe/Paris")
	all := every()
	long := strings.Repeat("a", MaxTaskLength+1)
	return []parseCase{
		// Time fields: every form.
		{name: "all stars", line: "* * * * * t", want: ent("t", all)},
		{name: "lower bounds", line: "0 0 1 1 0 t", want: ent("t", sched(set(0), set(0), set(1), set(1), set(0)))},
		{name: "upper bounds", line: "59 23 31 12 6 t", want: ent("t", sched(set(59), set(23), set(31), set(12), set(6)))},
		{name: "comma list", line: "1,2,3 * * * * t", want: ent("t", sched(set(1, 2, 3), allHours, allDays, allMonths, allWeekdays))},
		{name: "range", line: "10-13 * * * * t", want: ent("t", sched(set(10, 11, 12, 13), allHours, allDays, allMonths, allWeekdays))},
		{name: "minute step", line: "*/15 * * * * t", want: ent("t", sched(set(0, 15, 30, 45), allHours, allDays, allMonths, allWeekdays))},
		{name: "hour step", line: "0 */5 * * * t", want: ent("t", sched(set(0), set(0, 5, 10, 15, 20), allDays, allMonths, allWeekdays))},
		{name: "day step starts at 1", line: "0 0 */10 * * t", want: ent("t", sched(set(0), set(0), set(1, 11, 21, 31), allMonths, allWeekdays))},
		{name: "month step starts at 1", line: "0 0 1 */5 * t", want: ent("t", sched(set(0), set(0), set(1), set(1, 6, 11), allWeekdays))},
		{name: "weekday step", line: "0 0 * * */2 t", want: ent("t", sched(set(0), set(0), allDays, allMonths, set(0, 2, 4, 6)))},
		{name: "step 1 is star", line: "*/1 * * * * t", want: ent("t", all)},
		{name: "step larger than field", line: "*/60 * * * * t", want: ent("t", sched(set(0), allHours, allDays, allMonths, allWeekdays))},
		{name: "mixed list", line: "1-3,10,*/20 * * * * t", want: ent("t", sched(set(0, 1, 2, 3, 10, 20, 40), allHours, allDays, allMonths, allWeekdays))},
		{name: "overlaps merge", line: "5,5,1-6 * * * * t", want: ent("t", sched(set(1, 2, 3, 4, 5, 6), allHours, allDays, allMonths, allWeekdays))},
		{name: "leading zero", line: "05 07 * * * t", want: ent("t", daily(7, 5))},
		{name: "dow 7 is Sunday", line: "0 0 * * 7 t", want: ent("t", sched(set(0), set(0), allDays, allMonths, set(0)))},
		{name: "dow range to 7", line: "0 0 * * 5-7 t", want: ent("t", sched(set(0), set(0), allDays, allMonths, set(0, 5, 6)))},
		{name: "dow 0-7 is all", line: "0 0 * * 0-7 t", want: ent("t", daily(0, 0))},
		{name: "tabs and many spaces", line: "\t0   0\t* *  *   t  ", want: ent("t", daily(0, 0))},

		// Time fields: bounds and syntax errors.
		{name: "minute 60", line: "60 * * * * t", wantErr: "line 1, column 1: minute 60 is out of range 0-59"},
		{name: "hour 24", line: "* 24 * * * t", wantErr: "line 1, column 3: hour 24 is out of range 0-23"},
		{name: "dom 0", line: "* * 0 * * t", wantErr: "line 1, column 5: day-of-month 0 is out of range 1-31"},
		{name: "dom 32", line: "* * 32 * * t", wantErr: "line 1, column 5: day-of-month 32 is out of range 1-31"},
		{name: "month 0", line: "* * * 0 * t", wantErr: "line 1, column 7: month 0 is out of range 1-12"},
		{name: "month 13", line: "* * * 13 * t", wantErr: "line 1, column 7: month 13 is out of range 1-12"},
		{name: "dow 8", line: "* * * * 8 t", wantErr: "line 1, column 9: day-of-week 8 is out of range 0-7 (0 and 7 are Sunday)"},
		{name: "huge number", line: "99999999999999999999 * * * * t", wantErr: "line 1, column 1: minute 99999999999999999999 is out of range 0-59"},
		{name: "range end out of range", line: "55-60 * * * * t", wantErr: "line 1, column 4: minute 60 is out of range 0-59"},
		{name: "empty range", line: "5-5 * * * * t", wantErr: `line 1, column 1: minute range "5-5": expected the end to be greater than the start`},
		{name: "reversed range", line: "* 10-5 * * * t", wantErr: `line 1, column 3: hour range "10-5": expected the end to be greater than the start`},
		{name: "step 0", line: "*/0 * * * * t", wantErr: `line 1, column 3: minute step "*/0": expected a step of at least 1`},
		{name: "stepped range", line: "1-10/2 * * * * t", wantErr: `line 1, column 1: minute: unsupported syntax "1-10/2"; expected a number, a range a-b, * or */n (names and stepped ranges such as 1-10/2 are not supported)`},
		{name: "day name", line: "* * * * MON t", wantErr: `line 1, column 9: day-of-week: unsupported syntax "MON"; expected a number, a range a-b, * or */n (names and stepped ranges such as 1-10/2 are not supported)`},
		{name: "empty list item", line: "1,,2 * * * * t", wantErr: "line 1, column 3: minute: empty value in a comma list"},
		{name: "negative", line: "-1 * * * * t", wantErr: `line 1, column 1: minute: unsupported syntax "-1"; expected a number, a range a-b, * or */n (names and stepped ranges such as 1-10/2 are not supported)`},
		{name: "too few fields", line: "* * * * t", wantErr: "line 1, column 10: expected 5 time fields (minute hour day-of-month month day-of-week) and a task identifier, found only 5 field(s)"},
		{name: "no task", line: "* * * * *", wantErr: "line 1, column 10: expected 5 time fields (minute hour day-of-month month day-of-week) and a task identifier, found only 5 field(s)"},
		{name: "only two fields", line: "  * *", wantErr: "line 1, column 6: expected 5 time fields (minute hour day-of-month month day-of-week) and a task identifier, found only 2 field(s)"},
		{name: "several field errors", line: "60 24 0 13 8 t", wantErr: "line 1, column 1: minute 60 is out of range 0-59\n" +
			"line 1, column 4: hour 24 is out of range 0-23\n" +
			"line 1, column 7: day-of-month 0 is out of range 1-31\n" +
			"line 1, column 9: month 13 is out of range 1-12\n" +
			"line 1, column 12: day-of-week 8 is out of range 0-7 (0 and 7 are Sunday)"},
		{name: "column counts leading blanks", line: "   61 * * * * t", wantErr: "line 1, column 4: minute 61 is out of range 0-59"},

		// Task identifiers.
		{name: "task with : / -", line: "* * * * * app:mail/send-now_2", want: ent("app:mail/send-now_2", all)},
		{name: "task starting with _", line: "* * * * * _t", want: ent("_t", all)},
		{name: "task starting with digit", line: "* * * * * 9abc", wantErr: `line 1, column 11: task identifier "9abc": expected a letter or _ followed by letters, digits and _ - : / (at most 128 characters)`},
		{name: "task with dot", line: "* * * * * a.b", wantErr: `line 1, column 11: task identifier "a.b": expected a letter or _ followed by letters, digits and _ - : / (at most 128 characters)`},
		{name: "task glued to payload", line: "* * * * * a{b:1}", wantErr: `line 1, column 11: task identifier "a{b:1}": expected a letter or _ followed by letters, digits and _ - : / (at most 128 characters)`},
		{name: "options without task", line: "* * * * * ?max=3", wantErr: `line 1, column 11: missing task identifier before "?max=3"`},
		{name: "task too long", line: "* * * * * " + long, wantErr: `line 1, column 11: task identifier "aaaaaaaaaaaaaaaaaaaaaaaa...": expected a letter or _ followed by letters, digits and _ - : / (at most 128 characters)`},
		{name: "garbage after task", line: "* * * * * t extra", wantErr: `line 1, column 13: unexpected "extra" after the task identifier; expected ?options or a JSON5 object payload {...}`},

		// Options.
		{name: "id", line: "* * * * * t ?id=daily-1_x", want: ent("t", all, withID("daily-1_x"))},
		{name: "bad id", line: "* * * * * t ?id=a/b", wantErr: `line 1, column 17: id "a/b": expected a letter or _ followed by letters, digits, _ and -`},
		{name: "empty id", line: "* * * * * t ?id=", wantErr: `line 1, column 17: id "": expected a letter or _ followed by letters, digits, _ and -`},
		{name: "fill all units", line: "* * * * * t ?fill=1w2d3h4m5s", want: ent("t", all, withOptions(Options{Fill: 7*24*time.Hour + 2*24*time.Hour + 3*time.Hour + 4*time.Minute + 5*time.Second}))},
		{name: "fill seconds", line: "* * * * * t ?fill=90s", want: ent("t", all, withOptions(Options{Fill: 90 * time.Second}))},
		{name: "fill zero", line: "* * * * * t ?fill=0m", want: ent("t", all)},
		{name: "fill out of order", line: "* * * * * t ?fill=2h1d", wantErr: `line 1, column 19: fill "2h1d": expected a period like 1w2d3h4m5s (units w, d, h, m, s, each at most once and in that order)`},
		{name: "fill repeated unit", line: "* * * * * t ?fill=1m1m", wantErr: `line 1, column 19: fill "1m1m": expected a period like 1w2d3h4m5s (units w, d, h, m, s, each at most once and in that order)`},
		{name: "fill bad unit", line: "* * * * * t ?fill=5x", wantErr: `line 1, column 19: fill "5x": expected a period like 1w2d3h4m5s (units w, d, h, m, s, each at most once and in that order)`},
		{name: "fill no number", line: "* * * * * t ?fill=h", wantErr: `line 1, column 19: fill "h": expected a period like 1w2d3h4m5s (units w, d, h, m, s, each at most once and in that order)`},
		{name: "fill no unit", line: "* * * * * t ?fill=5", wantErr: `line 1, column 19: fill "5": expected a period like 1w2d3h4m5s (units w, d, h, m, s, each at most once and in that order)`},
		{name: "fill without value", line: "* * * * * t ?fill", wantErr: `line 1, column 18: fill "": expected a period like 1w2d3h4m5s (units w, d, h, m, s, each at most once and in that order)`},
		{name: "fill too long", line: "* * * * * t ?fill=99999999w", wantErr: `line 1, column 19: fill "99999999w": period is too long`},
		{name: "max", line: "* * * * * t ?max=3", want: ent("t", all, withOptions(Options{MaxAttempts: 3}))},
		{name: "max smallint", line: "* * * * * t ?max=32767", want: ent("t", all, withOptions(Options{MaxAttempts: 32767}))},
		{name: "max 0", line: "* * * * * t ?max=0", wantErr: `line 1, column 18: max "0": expected an integer from 1 to 32767`},
		{name: "max too big", line: "* * * * * t ?max=32768", wantErr: `line 1, column 18: max "32768": expected an integer from 1 to 32767`},
		{name: "max negative", line: "* * * * * t ?max=-1", wantErr: `line 1, column 18: max "-1": expected an integer from 1 to 32767`},
		{name: "max word", line: "* * * * * t ?max=many", wantErr: `line 1, column 18: max "many": expected an integer from 1 to 32767`},
		{name: "queue", line: "* * * * * t ?queue=mail:out-1_a", want: ent("t", all, withOptions(Options{Queue: "mail:out-1_a"}))},
		{name: "queue with space", line: "* * * * * t ?queue=a+b", wantErr: `line 1, column 20: queue "a b": expected 1-128 letters, digits, _, - and :`},
		{name: "priority negative", line: "* * * * * t ?priority=-5", want: ent("t", all, withOptions(Options{Priority: -5}))},
		{name: "priority bounds", line: "* * * * * t ?priority=-32768", want: ent("t", all, withOptions(Options{Priority: -32768}))},
		{name: "priority too big", line: "* * * * * t ?priority=32768", wantErr: `line 1, column 23: priority "32768": expected an integer from -32768 to 32767`},
		{name: "priority fraction", line: "* * * * * t ?priority=1.5", wantErr: `line 1, column 23: priority "1.5": expected an integer from -32768 to 32767`},
		{name: "priority plus", line: "* * * * * t ?priority=+1", wantErr: `line 1, column 23: priority " 1": expected an integer from -32768 to 32767`},
		{name: "jobKey defaults to replace", line: "* * * * * t ?jobKey=abc", want: ent("t", all, withOptions(Options{JobKey: "abc", JobKeyMode: JobKeyModeReplace}))},
		{name: "jobKey decoding", line: "* * * * * t ?jobKey=a+b%2Bc%26d%3D%C3%A9", want: ent("t", all, withOptions(Options{JobKey: "a b+c&d=é", JobKeyMode: JobKeyModeReplace}))},
		{name: "jobKey stray percent", line: "* * * * * t ?jobKey=100%", want: ent("t", all, withOptions(Options{JobKey: "100%", JobKeyMode: JobKeyModeReplace}))},
		{name: "jobKey empty", line: "* * * * * t ?jobKey=", wantErr: `line 1, column 21: jobKey "": expected 1-512 characters without line breaks`},
		{name: "jobKey line break", line: "* * * * * t ?jobKey=a%0Ab", wantErr: `line 1, column 21: jobKey "a\nb": expected 1-512 characters without line breaks`},
		{name: "jobKey bad utf8", line: "* * * * * t ?jobKey=%ff", wantErr: `line 1, column 14: option "jobKey=%ff": %-escapes do not decode to valid UTF-8`},
		{name: "jobKeyMode", line: "* * * * * t ?jobKey=k&jobKeyMode=preserve_run_at", want: ent("t", all, withOptions(Options{JobKey: "k", JobKeyMode: JobKeyModePreserveRunAt}))},
		{name: "jobKeyMode replace", line: "* * * * * t ?jobKeyMode=replace&jobKey=k", want: ent("t", all, withOptions(Options{JobKey: "k", JobKeyMode: JobKeyModeReplace}))},
		{name: "jobKeyMode without jobKey", line: "* * * * * t ?jobKeyMode=replace", wantErr: "line 1, column 14: jobKeyMode is set but jobKey is not"},
		{name: "jobKeyMode unsafe_dedupe", line: "* * * * * t ?jobKey=k&jobKeyMode=unsafe_dedupe", wantErr: `line 1, column 34: jobKeyMode "unsafe_dedupe": expected replace or preserve_run_at`},
		{name: "tz", line: "30 2 * * * t ?tz=Europe/Paris", want: ent("t", daily(2, 30), withZone(paris))},
		{name: "tz UTC is the default", line: "30 2 * * * t ?tz=UTC", want: ent("t", daily(2, 30))},
		{name: "tz unknown", line: "* * * * * t ?tz=Mars/Olympus", wantErr: `line 1, column 17: tz "Mars/Olympus": unknown time zone Mars/Olympus`},
		{name: "tz Local", line: "* * * * * t ?tz=Local", wantErr: `line 1, column 17: tz "Local": expected an IANA time zone name such as Europe/Paris`},
		{name: "tz empty", line: "* * * * * t ?tz=", wantErr: `line 1, column 17: tz "": expected an IANA time zone name such as Europe/Paris`},
		{name: "duplicate option", line: "* * * * * t ?max=2&max=3", wantErr: `line 1, column 20: option "max" given more than once`},
		{name: "unknown option", line: "* * * * * t ?foo=1", wantErr: `line 1, column 14: unknown option "foo"; expected one of id, fill, max, queue, priority, jobKey, jobKeyMode, tz`},
		{name: "option names are case sensitive", line: "* * * * * t ?jobkey=1", wantErr: `line 1, column 14: unknown option "jobkey"; expected one of id, fill, max, queue, priority, jobKey, jobKeyMode, tz`},
		{name: "empty option pairs are skipped", line: "* * * * * t ?&max=2&&queue=q&", want: ent("t", all, withOptions(Options{MaxAttempts: 2, Queue: "q"}))},
		{name: "empty options", line: "* * * * * t ?", wantErr: "line 1, column 13: empty options after ?; expected key=value pairs joined by &"},
		{name: "every option", line: "0 4 * * 1 t ?id=x&fill=1d&max=5&queue=q&priority=-1&jobKey=k&jobKeyMode=preserve_run_at&tz=Europe/Paris {a:1}",
			want: ent("t", sched(set(0), set(4), allDays, allMonths, set(1)), withID("x"), withZone(paris), withPayload(`{"a":1}`),
				withOptions(Options{Fill: 24 * time.Hour, MaxAttempts: 5, Queue: "q", Priority: -1, JobKey: "k", JobKeyMode: JobKeyModePreserveRunAt}))},
		{name: "several option errors", line: "* * * * * t ?max=0&foo=1&max=2", wantErr: `line 1, column 18: max "0": expected an integer from 1 to 32767` + "\n" +
			`line 1, column 20: unknown option "foo"; expected one of id, fill, max, queue, priority, jobKey, jobKeyMode, tz` + "\n" +
			`line 1, column 26: option "max" given more than once`},

		// JSON5 payloads.
		{name: "payload", line: "* * * * * t {a:1}", want: ent("t", all, withPayload(`{"a":1}`))},
		{name: "payload after options", line: "* * * * * t ?max=2 {a:1}", want: ent("t", all, withOptions(Options{MaxAttempts: 2}), withPayload(`{"a":1}`))},
		{name: "empty payload", line: "* * * * * t {}", want: ent("t", all, withPayload(`{}`))},
		{name: "single quotes", line: `* * * * * t {'a':'it\'s', "b": "x"}`, want: ent("t", all, withPayload(`{"a":"it's","b":"x"}`))},
		{name: "trailing commas", line: "* * * * * t {a:[1,2,],b:{c:3,},}", want: ent("t", all, withPayload(`{"a":[1,2],"b":{"c":3}}`))},
		{name: "comments", line: "* * * * * t { /* block */ a: /* here */ 1, // to the end }", wantErr: "line 1, column 59: payload: unexpected end of payload; expected a key (a name or a quoted string)"},
		{name: "block comments", line: "* * * * * t {/* x */a/**/:/* y */1/**/}", want: ent("t", all, withPayload(`{"a":1}`))},
		{name: "numbers", line: "* * * * * t {a:0x1F,b:-0x10,c:+1,d:.5,e:5.,f:1e21,g:1e-7,h:-0,i:1.50,j:12345678901234567890}",
			want: ent("t", all, withPayload(`{"a":31,"b":-16,"c":1,"d":0.5,"e":5,"f":1e+21,"g":1e-7,"h":0,"i":1.5,"j":12345678901234567000}`))},
		{name: "nested", line: "* * * * * t {a:{b:{c:[true,false,null,[]]}}}", want: ent("t", all, withPayload(`{"a":{"b":{"c":[true,false,null,[]]}}}`))},
		{name: "identifier keys", line: "* * * * * t {é:1,$x:2,_y:3,\\u0061b:4}", want: ent("t", all, withPayload(`{"é":1,"$x":2,"_y":3,"ab":4}`))},
		{name: "string escapes", line: `* * * * * t {a:"\x41\u00e9\n\t\"\\\/\q\0",b:"\ud83d\ude00"}`, want: ent("t", all, withPayload(`{"a":"Aé\n\t\"\\/q\u0000","b":"😀"}`))},
		{name: "repeated keys keep the last value", line: "* * * * * t {a:1,b:2,a:3}", want: ent("t", all, withPayload(`{"a":3,"b":2}`))},
		{name: "index keys come first", line: `* * * * * t {b:1,"10":2,"2":3,"02":4}`, want: ent("t", all, withPayload(`{"2":3,"10":2,"b":1,"02":4}`))},
		{name: "array payload", line: "* * * * * t [1,2]", wantErr: `line 1, column 13: unexpected "[1,2]" after the task identifier; expected ?options or a JSON5 object payload {...}`},
		{name: "string payload", line: `* * * * * t "x"`, wantErr: `line 1, column 13: unexpected "\"x\"" after the task identifier; expected ?options or a JSON5 object payload {...}`},
		{name: "unterminated object", line: "* * * * * t {a:1", wantErr: "line 1, column 17: payload: unexpected end of payload; expected ',' or '}'"},
		{name: "unterminated string", line: "* * * * * t {a:'x}", wantErr: "line 1, column 19: payload: unterminated string"},
		{name: "unterminated comment", line: "* * * * * t {a:1 /* x}", wantErr: "line 1, column 18: payload: unterminated /* comment"},
		{name: "Infinity", line: "* * * * * t {a:-Infinity}", wantErr: "line 1, column 17: payload: Infinity and NaN cannot be stored in JSON"},
		{name: "NaN", line: "* * * * * t {a:NaN}", wantErr: "line 1, column 16: payload: Infinity and NaN cannot be stored in JSON"},
		{name: "leading zero", line: "* * * * * t {a:01}", wantErr: "line 1, column 17: payload: number has a leading zero"},
		{name: "too large", line: "* * * * * t {a:1e400}", wantErr: "line 1, column 16: payload: number 1e400 is too large for a double"},
		{name: "hex without digits", line: "* * * * * t {a:0x}", wantErr: "line 1, column 18: payload: unexpected '}'; expected a hex digit"},
		{name: "lone surrogate", line: `* * * * * t {a:"\ud800"}`, wantErr: `line 1, column 23: payload: lone UTF-16 surrogate \ud800 in string; JSON cannot store it`},
		{name: "octal escape", line: `* * * * * t {a:"\8"}`, wantErr: `line 1, column 17: payload: invalid escape \8`},
		{name: "key starting with digit", line: "* * * * * t {1a:2}", wantErr: "line 1, column 14: payload: unexpected '1'; expected a key (a name or a quoted string)"},
		{name: "double comma", line: "* * * * * t {a:1,,}", wantErr: "line 1, column 18: payload: unexpected ','; expected a key (a name or a quoted string)"},
		{name: "comment after payload", line: "* * * * * t {a:1} // c", wantErr: "line 1, column 19: payload: unexpected '/' after the end of the payload"},
		{name: "two payloads", line: "* * * * * t {a:1} {b:2}", wantErr: "line 1, column 19: payload: unexpected '{' after the end of the payload"},
		{name: "options after payload", line: "* * * * * t {a:1} ?max=2", wantErr: "line 1, column 19: payload: unexpected '?' after the end of the payload"},
		{name: "bad literal", line: "* * * * * t {a:tru}", wantErr: "line 1, column 16: payload: unexpected 't'; expected a value"},
		{name: "column counts characters", line: "* * * * * t {é:'é',x:}", wantErr: "line 1, column 22: payload: unexpected '}'; expected a value"},

		// Whole line.
		{name: "invalid UTF-8", line: "* * * * * t {a:'\xff'}", wantErr: "line 1, column 17: the line is not valid UTF-8"},
		{name: "inline comment is not a comment", line: "* * * * * t # run t", wantErr: `line 1, column 13: unexpected "#" after the task identifier; expected ?options or a JSON5 object payload {...}`},
	}
}

func TestParseLines(t *testing.T) {
	t.Parallel()
	for _, tc := range parseCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := Parse(tc.line)
			if tc.want == nil {
				if err == nil {
					t.Fatalf("Parse(%q) = %v, want error %q", tc.line, c, tc.wantErr)
				}
				if err.Error() != tc.wantErr {
					t.Fatalf("Parse(%q) error:\n%s\nwant:\n%s", tc.line, err, tc.wantErr)
				}
				var perr *ParseError
				if !errors.As(err, &perr) || c != nil {
					t.Fatalf("want a *ParseError and no entries, got %T and %v", err, c)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.line, err)
			}
			if len(c) != 1 {
				t.Fatalf("Parse(%q) gave %d entries, want 1", tc.line, len(c))
			}
			got := c[0]
			if !got.Equal(*tc.want) || got.Line != tc.want.Line || got.Schedule.Location != tc.want.Schedule.Location {
				t.Fatalf("Parse(%q)\n got %s %+v %+v\nwant %s %+v %+v", tc.line,
					describeEntry(got), got.Schedule, got.Options, describeEntry(*tc.want), tc.want.Schedule, tc.want.Options)
			}
		})
	}
}

func TestParseSkipsCommentsAndBlankLines(t *testing.T) {
	t.Parallel()
	text := "# header\n\n   \t\r\n   # indented comment\r\n30 4 * * * a\r\n\n\t0 0 * * 0 b ?id=b2\n# trailing"
	c := mustParse(t, text)
	if len(c) != 2 {
		t.Fatalf("got %d entries, want 2: %v", len(c), c)
	}
	if c[0].Task != "a" || c[0].Line != 5 || !c[0].Schedule.Equal(daily(4, 30)) {
		t.Errorf("first entry = %s (line %d)", describeEntry(c[0]), c[0].Line)
	}
	if c[1].Identifier != "b2" || c[1].Line != 7 {
		t.Errorf("second entry = %s (line %d)", describeEntry(c[1]), c[1].Line)
	}
}

func TestParseEmptyCrontab(t *testing.T) {
	t.Parallel()
	for _, text := range []string{"", "\n\n", "# only comments\n  # here\n"} {
		c, err := Parse(text)
		if err != nil || len(c) != 0 {
			t.Errorf("Parse(%q) = %v, %v; want no entries and no error", text, c, err)
		}
	}
}

func TestParseCollectsErrorsOfAllLines(t *testing.T) {
	t.Parallel()
	text := "# jobs\n" +
		"30 4 * * * send\n" +
		"0 24 * * * report\n" +
		"* * * * * send\n" +
		"* * * * * other ?id=send\n" +
		"* * * * * other\n" +
		"* * * * * 9x ?max=0\n" +
		"* * * *\n"
	_, err := Parse(text)
	want := "line 3, column 3: hour 24 is out of range 0-23\n" +
		`line 4, column 11: duplicate id "send": line 2 already uses it; give one of them a unique ?id=` + "\n" +
		`line 5, column 21: duplicate id "send": line 2 already uses it; give one of them a unique ?id=` + "\n" +
		`line 7, column 11: task identifier "9x": expected a letter or _ followed by letters, digits and _ - : / (at most 128 characters)` + "\n" +
		`line 7, column 19: max "0": expected an integer from 1 to 32767` + "\n" +
		"line 8, column 8: expected 5 time fields (minute hour day-of-month month day-of-week) and a task identifier, found only 4 field(s)"
	if err == nil || err.Error() != want {
		t.Fatalf("error:\n%v\nwant:\n%s", err, want)
	}
	var perr *ParseError
	if !errors.As(err, &perr) || len(perr.Errors) != 6 {
		t.Fatalf("errors.As *ParseError: %#v", err)
	}
	if got := perr.Errors[0]; got != (LineError{Line: 3, Column: 3, Msg: "hour 24 is out of range 0-23"}) {
		t.Errorf("first LineError = %+v", got)
	}
	var first LineError
	if !errors.As(err, &first) || first.Line != 3 {
		t.Errorf("errors.As LineError = %+v", first)
	}
}

func TestParseDuplicateIDsResolvedByID(t *testing.T) {
	t.Parallel()
	c := mustParse(t, "0 4 * * * send ?id=send_morning\n0 16 * * * send ?id=send_evening\n0 0 * * * send\n")
	var ids []string
	for _, e := range c {
		ids = append(ids, e.Identifier)
	}
	if got := strings.Join(ids, ","); got != "send_morning,send_evening,send" {
		t.Fatalf("ids = %s", got)
	}
}

func TestParseSchedule(t *testing.T) {
	t.Parallel()
	s := mustSchedule(t, " 30 4 * * 1-5 ")
	want := sched(set(30), set(4), allDays, allMonths, set(1, 2, 3, 4, 5))
	if !s.Equal(want) || s.Location != nil {
		t.Fatalf("ParseSchedule = %+v, want %+v", s, want)
	}
	for spec, wantErr := range map[string]string{
		"* * * *":           "line 1, column 1: expected 5 time fields (minute hour day-of-month month day-of-week), found 4",
		"* * * * * task":    "line 1, column 1: expected 5 time fields (minute hour day-of-month month day-of-week), found 6",
		"* 24 * * *":        "line 1, column 3: hour 24 is out of range 0-23",
		"* * * * \xff":      "line 1, column 9: the line is not valid UTF-8",
		"60 * * * 8-9":      "line 1, column 1: minute 60 is out of range 0-59\nline 1, column 10: day-of-week 8 is out of range 0-7 (0 and 7 are Sunday)\nline 1, column 12: day-of-week 9 is out of range 0-7 (0 and 7 are Sunday)",
		"  *  *  *  *  */0": `line 1, column 17: day-of-week step "*/0": expected a step of at least 1`,
	} {
		_, err := ParseSchedule(spec)
		if err == nil || err.Error() != wantErr {
			t.Errorf("ParseSchedule(%q) error:\n%v\nwant:\n%s", spec, err, wantErr)
		}
	}
}

func TestRestrictedFollowsNode(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		spec     string
		dom, dow bool
	}{
		{"* * * * *", false, false},
		{"* * */1 * */1", false, false},
		{"* * 1-31 * 0-6", false, false},
		{"* * 1-31 * 1-7", false, false},
		{"* * 13 * *", true, false},
		{"* * * * 5", false, true},
		{"* * 2-31 * 0-5", true, true},
	} {
		s := mustSchedule(t, tc.spec)
		if s.DayOfMonthRestricted() != tc.dom || s.DayOfWeekRestricted() != tc.dow {
			t.Errorf("%q: restricted dom=%v dow=%v, want %v %v", tc.spec,
				s.DayOfMonthRestricted(), s.DayOfWeekRestricted(), tc.dom, tc.dow)
		}
	}
}

func TestParseCapsTheErrorList(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	for i := 0; i < MaxErrors+50; i++ {
		fmt.Fprintf(&b, "61 * * * * t%d\n", i)
	}
	text := b.String()
	_, err := Parse(text)
	var perr *ParseError
	if !errors.As(err, &perr) || len(perr.Errors) != MaxErrors || !perr.Truncated {
		t.Fatalf("got %d errors, truncated=%v", len(perr.Errors), perr != nil && perr.Truncated)
	}
	if last := perr.Errors[MaxErrors-1]; last.Line != MaxErrors {
		t.Errorf("last listed error is on line %d, want %d", last.Line, MaxErrors)
	}
	if !strings.HasSuffix(err.Error(), "\ntoo many errors: only the first 100 are listed") {
		t.Errorf("Error() does not say it is truncated: ...%s", err.Error()[len(err.Error())-80:])
	}
	// A single line with a huge number of problems is capped too.
	_, err = Parse("* * * * * t ?" + strings.Repeat("x=1&", 10000))
	if !errors.As(err, &perr) || len(perr.Errors) != MaxErrors || !perr.Truncated {
		t.Fatalf("long line: got %d errors", len(perr.Errors))
	}
}
