package cronspec

import (
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the DST tests must not depend on the machine's zoneinfo
)

// set returns the Set of the given values.
func set(vals ...int) Set {
	var s Set
	for _, v := range vals {
		s |= 1 << uint(v)
	}
	return s
}

// daily is the schedule "minute hour * * *".
func daily(hour, minute int) Schedule {
	return Schedule{Minute: set(minute), Hour: set(hour), DayOfMonth: allDays, Month: allMonths, DayOfWeek: allWeekdays}
}

// every is the schedule "* * * * *".
func every() Schedule {
	return Schedule{Minute: allMinutes, Hour: allHours, DayOfMonth: allDays, Month: allMonths, DayOfWeek: allWeekdays}
}

func mustZone(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := loadZone(name)
	if err != nil {
		t.Fatalf("load %s: %v", name, err)
	}
	return loc
}

func mustParse(t testing.TB, text string) Crontab {
	t.Helper()
	c, err := Parse(text)
	if err != nil {
		t.Fatalf("Parse(%q): %v", text, err)
	}
	return c
}

func mustSchedule(t testing.TB, spec string) Schedule {
	t.Helper()
	s, err := ParseSchedule(spec)
	if err != nil {
		t.Fatalf("ParseSchedule(%q): %v", spec, err)
	}
	return s
}

// utc parses "2006-01-02T15:04" in UTC.
func utc(t testing.TB, s string) time.Time {
	t.Helper()
	tm, err := time.Parse("2006-01-02T15:04", s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

// describeEntry prints an entry for failure messages.
func describeEntry(e Entry) string {
	var b strings.Builder
	b.WriteString(e.String())
	b.WriteString(" [id=" + e.Identifier + "]")
	return b.String()
}
