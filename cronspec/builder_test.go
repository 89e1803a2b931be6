package cronspec

import (
	"strings"
	"testing"
	"time"
)

func TestBuilderEqualsParser(t *testing.T) {
	t.Parallel()
	paris := mustZone(t, "Europe/Paris")
	for _, tc := range []struct {
		name  string
		built Builder
		line  string
	}{
		{"the issue's example", DailyAt(4, 30, "send").Fill(2 * time.Hour), "30 4 * * * send ?fill=2h"},
		{"every minute", EveryMinute("t"), "* * * * * t"},
		{"every 15 minutes", EveryNMinutes(15, "t"), "*/15 * * * * t"},
		{"every 7 minutes", EveryNMinutes(7, "t"), "*/7 * * * * t"},
		{"every 1 minute", EveryNMinutes(1, "t"), "*/1 * * * * t"},
		{"hourly", HourlyAt(5, "t"), "5 * * * * t"},
		{"weekly on Sunday as 0", WeeklyOn(time.Sunday, 9, 0, "t"), "0 9 * * 0 t"},
		{"weekly on Sunday as 7", WeeklyOn(time.Sunday, 9, 0, "t"), "0 9 * * 7 t"},
		{"weekly on Friday", WeeklyOn(time.Friday, 23, 59, "t"), "59 23 * * 5 t"},
		{"monthly on the 31st", MonthlyOn(31, 0, 0, "t"), "0 0 31 * * t"},
		{"yearly on February 29", YearlyOn(time.February, 29, 12, 0, "t"), "0 12 29 2 * t"},
		{"job key defaults to replace", HourlyAt(0, "t").JobKey("k"), "0 * * * * t ?jobKey=k"},
		{"UTC zone is no zone", DailyAt(1, 2, "t").TZ("UTC"), "2 1 * * * t"},
		{"UTC location is no zone", DailyAt(1, 2, "t").Location(time.UTC), "2 1 * * * t"},
		{"location by value", DailyAt(1, 2, "t").Location(paris), "2 1 * * * t ?tz=Europe/Paris"},
		{"nil payload", DailyAt(1, 2, "t").Payload(map[string]int{"a": 1}).Payload(nil), "2 1 * * * t"},
		{"every option", WeeklyOn(time.Monday, 4, 0, "app:report").
			ID("weekly_report").
			Fill(24*time.Hour + 90*time.Second).
			MaxAttempts(5).
			Queue("reports").
			Priority(-3).
			JobKey("weekly report").
			JobKeyMode(JobKeyModePreserveRunAt).
			TZ("Europe/Paris").
			Payload(struct {
				To     string `json:"to"`
				Format string `json:"format"`
				Pages  []int  `json:"pages"`
			}{"ops & <dev>", "pdf", []int{1, 2}}),
			`0 4 * * 1 app:report ?id=weekly_report&fill=1d1m30s&max=5&queue=reports&priority=-3&jobKey=weekly+report&jobKeyMode=preserve_run_at&tz=Europe/Paris {to: 'ops & <dev>', format: "pdf", pages: [1, 2,],}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := tc.built.Entry()
			if err != nil {
				t.Fatalf("Entry: %v", err)
			}
			want := mustParse(t, tc.line)[0]
			if !got.Equal(want) {
				t.Fatalf("builder:\n %s %+v\nparser:\n %s %+v", describeEntry(got), got.Options, describeEntry(want), want.Options)
			}
			if got.Line != 0 {
				t.Errorf("built entry has Line %d, want 0", got.Line)
			}
		})
	}
}

func TestBuilderErrorsNameTheField(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		built Builder
		want  []string // substrings of the error, one per problem
	}{
		{"hour", DailyAt(24, 0, "t"), []string{"cronspec: DailyAt: hour 24 is out of range 0-23"}},
		{"minute", HourlyAt(60, "t"), []string{"cronspec: HourlyAt: minute 60 is out of range 0-59"}},
		{"negative minute", DailyAt(0, -1, "t"), []string{"cronspec: DailyAt: minute -1 is out of range 0-59"}},
		{"weekday", WeeklyOn(time.Weekday(7), 0, 0, "t"), []string{"cronspec: WeeklyOn: day-of-week 7 is out of range 0-6"}},
		{"day", MonthlyOn(0, 0, 0, "t"), []string{"cronspec: MonthlyOn: day-of-month 0 is out of range 1-31"}},
		{"month", YearlyOn(time.Month(13), 1, 0, 0, "t"), []string{"cronspec: YearlyOn: month 13 is out of range 1-12"}},
		{"step", EveryNMinutes(0, "t"), []string{"cronspec: EveryNMinutes: step 0 is out of range 1-59"}},
		{"step too big", EveryNMinutes(90, "t"), []string{"cronspec: EveryNMinutes: step 90 is out of range 1-59"}},
		{"task", EveryMinute("9x"), []string{`cronspec: task identifier "9x": expected a letter or _`}},
		{"empty task", EveryMinute(""), []string{`cronspec: task identifier "": expected a letter or _`}},
		{"id", EveryMinute("t").ID("a/b"), []string{`cronspec: id "a/b": expected a letter or _ followed by letters, digits, _ and -`}},
		{"empty id", EveryMinute("t").ID(""), []string{`cronspec: id "": expected`}},
		{"max attempts 0", EveryMinute("t").MaxAttempts(0), []string{"cronspec: max attempts 0: expected an integer from 1 to 32767"}},
		{"max attempts", EveryMinute("t").MaxAttempts(-1), []string{"cronspec: max attempts -1: expected an integer from 1 to 32767"}},
		{"priority", EveryMinute("t").Priority(40000), []string{"cronspec: priority 40000: expected an integer from -32768 to 32767"}},
		{"queue", EveryMinute("t").Queue("a b"), []string{`cronspec: queue "a b": expected 1-128 letters, digits, _, - and :`}},
		{"job key", EveryMinute("t").JobKey("a\nb"), []string{`cronspec: job key "a\nb": expected 1-512 characters without line breaks`}},
		{"job key too long", EveryMinute("t").JobKey(strings.Repeat("é", 513)), []string{"cronspec: job key"}},
		{"job key mode", EveryMinute("t").JobKey("k").JobKeyMode("unsafe_dedupe"), []string{`cronspec: job key mode "unsafe_dedupe": expected replace or preserve_run_at`}},
		{"job key mode without key", EveryMinute("t").JobKeyMode(JobKeyModeReplace), []string{`cronspec: job key mode "replace" is set but job key is not`}},
		{"negative fill", EveryMinute("t").Fill(-time.Hour), []string{"cronspec: fill -1h0m0s: expected a non-negative whole number of seconds"}},
		{"sub-second fill", EveryMinute("t").Fill(1500 * time.Millisecond), []string{"cronspec: fill 1.5s: expected a non-negative whole number of seconds"}},
		{"array payload", EveryMinute("t").Payload([]int{1}), []string{"cronspec: payload: expected a value that marshals to a JSON object, got [1]"}},
		{"unmarshallable payload", EveryMinute("t").Payload(map[string]any{"c": make(chan int)}), []string{"cronspec: payload: json: unsupported type: chan int"}},
		{"tz", EveryMinute("t").TZ("Mars/Olympus"), []string{`cronspec: tz "Mars/Olympus": unknown time zone Mars/Olympus`}},
		{"tz Local", EveryMinute("t").TZ("Local"), []string{`cronspec: tz "Local": expected an IANA time zone name`}},
		{"unnamed location", EveryMinute("t").Location(time.FixedZone("X", 3600)), []string{`cronspec: time zone "X" cannot be written in a crontab`}},
		{"several", DailyAt(25, 61, "t").MaxAttempts(0 - 1).Queue(""), []string{
			"cronspec: DailyAt: minute 61 is out of range 0-59",
			"cronspec: DailyAt: hour 25 is out of range 0-23",
			"cronspec: max attempts -1",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e, err := tc.built.Entry()
			if err == nil {
				t.Fatalf("Entry() = %s, want an error", describeEntry(e))
			}
			msg := err.Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
			if n := strings.Count(msg, "cronspec: "); n != len(tc.want) {
				t.Errorf("error %q has %d problems, want %d", msg, n, len(tc.want))
			}
		})
	}
}

func TestBuilderIsAValue(t *testing.T) {
	t.Parallel()
	base := DailyAt(4, 30, "send").Fill(time.Hour)
	bad := base.MaxAttempts(0).TZ("Nowhere/Land")
	a, errA := base.Queue("a").Entry()
	b, errB := base.Queue("b").ID("send_b").Entry()
	if errA != nil || errB != nil {
		t.Fatalf("errors: %v, %v", errA, errB)
	}
	if a.Options.Queue != "a" || b.Options.Queue != "b" || a.Identifier != "send" || b.Identifier != "send_b" {
		t.Fatalf("builders share state: %s / %s", describeEntry(a), describeEntry(b))
	}
	if _, err := bad.Entry(); err == nil {
		t.Fatal("bad builder has no error")
	}
	if _, err := base.Entry(); err != nil {
		t.Fatalf("errors leaked back into the template: %v", err)
	}
}

func TestBuilderPayloadKeepsGoValues(t *testing.T) {
	t.Parallel()
	e, err := EveryMinute("t").Payload(map[string]any{"id": int64(1) << 60, "html": "<b>"}).Entry()
	if err != nil {
		t.Fatal(err)
	}
	// No HTML escaping, and integers keep all their digits.
	if got, want := string(e.Payload), `{"html":"<b>","id":1152921504606846976}`; got != want {
		t.Fatalf("payload = %s, want %s", got, want)
	}
}

func TestValidateHandMadeEntries(t *testing.T) {
	t.Parallel()
	good := Entry{Identifier: "t", Task: "t", Schedule: daily(1, 2)}
	if err := good.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	for _, tc := range []struct {
		name string
		e    Entry
		want string
	}{
		{"empty schedule", Entry{Identifier: "t", Task: "t"}, "cronspec: schedule minute field is empty"},
		{"value out of range", Entry{Identifier: "t", Task: "t", Schedule: Schedule{Minute: set(60), Hour: allHours, DayOfMonth: allDays, Month: allMonths, DayOfWeek: allWeekdays}},
			"cronspec: schedule minute field holds values outside 0-59"},
		{"missing identifier", Entry{Task: "t", Schedule: daily(1, 2)}, `cronspec: id "": expected`},
		{"job key without mode", Entry{Identifier: "t", Task: "t", Schedule: daily(1, 2), Options: Options{JobKey: "k"}}, "job key is set but job key mode is not"},
		{"payload not an object", Entry{Identifier: "t", Task: "t", Schedule: daily(1, 2), Payload: []byte(`[1]`)}, "cronspec: payload: expected a JSON object"},
		{"payload not JSON", Entry{Identifier: "t", Task: "t", Schedule: daily(1, 2), Payload: []byte(`{a:1}`)}, "cronspec: payload: not valid JSON"},
	} {
		if err := tc.e.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Validate() = %v, want %q", tc.name, err, tc.want)
		}
	}
}
