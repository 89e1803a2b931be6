package cronspec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Builder builds an Entry in code, as a typed alternative to a crontab line.
// Start with one of EveryMinute, EveryNMinutes, HourlyAt, DailyAt, WeeklyOn,
// MonthlyOn or YearlyOn, chain options, and finish with Entry, which applies
// the same rules as Parse:
//
//	e, err := cronspec.DailyAt(4, 30, "send_report").Fill(2 * time.Hour).Queue("reports").Entry()
//
// A Builder is a value: each method returns a modified copy, so a partly
// built Builder can be shared as a template.
type Builder struct {
	e    Entry
	errs []error
}

func newBuilder(task string, s Schedule, errs ...error) Builder {
	return Builder{e: Entry{Identifier: task, Task: task, Schedule: s}, errs: errs}
}

// timeArg checks one numeric argument of a constructor against its field.
func timeArg(ctor string, f field, v int) (Set, error) {
	if v < f.lo || v > f.hi {
		return 0, fmt.Errorf("cronspec: %s: %s %d is out of range %d-%d", ctor, f.name, v, f.lo, f.hi)
	}
	return 1 << uint(v), nil
}

// at builds a schedule from constructor arguments: field i is vals[i] when
// set[i], and "*" otherwise (also when vals[i] is out of range, which is
// recorded as an error).
func at(ctor, task string, vals [5]int, set [5]bool) Builder {
	sets := [5]Set{allMinutes, allHours, allDays, allMonths, allWeekdays}
	var errs []error
	for i, f := range fields {
		if !set[i] {
			continue
		}
		s, err := timeArg(ctor, f, vals[i])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		sets[i] = s
	}
	return newBuilder(task, Schedule{Minute: sets[0], Hour: sets[1], DayOfMonth: sets[2], Month: sets[3], DayOfWeek: sets[4]}, errs...)
}

// EveryMinute fires every minute: "* * * * *".
func EveryMinute(task string) Builder {
	return at("EveryMinute", task, [5]int{}, [5]bool{})
}

// EveryNMinutes fires at minutes 0, n, 2n, ... of every hour: "*/n * * * *".
// n must be from 1 to 59; like cron, a step that does not divide 60 leaves a
// shorter gap before the next hour (n=7 fires at :56 and then at :00).
func EveryNMinutes(n int, task string) Builder {
	b := EveryMinute(task)
	if n < 1 || n > 59 {
		return b.fail(fmt.Errorf("cronspec: EveryNMinutes: step %d is out of range 1-59", n))
	}
	b.e.Schedule.Minute = step(0, 59, n)
	return b
}

// HourlyAt fires every hour at the given minute: "minute * * * *".
func HourlyAt(minute int, task string) Builder {
	return at("HourlyAt", task, [5]int{minute}, [5]bool{true})
}

// DailyAt fires every day at hour:minute: "minute hour * * *".
func DailyAt(hour, minute int, task string) Builder {
	return at("DailyAt", task, [5]int{minute, hour}, [5]bool{true, true})
}

// WeeklyOn fires every week on weekday at hour:minute:
// "minute hour * * weekday".
func WeeklyOn(weekday time.Weekday, hour, minute int, task string) Builder {
	return at("WeeklyOn", task, [5]int{minute, hour, 0, 0, int(weekday)}, [5]bool{true, true, false, false, true})
}

// MonthlyOn fires every month on the given day (1-31) at hour:minute:
// "minute hour day * *". Months without that day are skipped, as in cron.
func MonthlyOn(day, hour, minute int, task string) Builder {
	return at("MonthlyOn", task, [5]int{minute, hour, day}, [5]bool{true, true, true})
}

// YearlyOn fires every year on month/day at hour:minute:
// "minute hour day month *". February 29 fires in leap years only.
func YearlyOn(month time.Month, day, hour, minute int, task string) Builder {
	return at("YearlyOn", task, [5]int{minute, hour, day, int(month)}, [5]bool{true, true, true, true})
}

// fail returns a copy of b with err recorded.
func (b Builder) fail(err error) Builder {
	b.errs = append(b.errs[:len(b.errs):len(b.errs)], err)
	return b
}

// ID sets the entry's identifier (option id), which must be unique within a
// crontab; it defaults to the task identifier.
func (b Builder) ID(id string) Builder { b.e.Identifier = id; return b }

// Fill sets the back-fill period (option fill), a whole number of seconds.
func (b Builder) Fill(d time.Duration) Builder { b.e.Options.Fill = d; return b }

// MaxAttempts sets the jobs' max attempts (option max), 1-32767. Without it
// the database default (25) applies.
func (b Builder) MaxAttempts(n int) Builder {
	if n == 0 { // Options' "unset" value, but surely not what the caller meant
		return b.fail(fmt.Errorf("cronspec: max attempts 0: %s", checkMaxAttempts(0)))
	}
	b.e.Options.MaxAttempts = n
	return b
}

// Queue sets the jobs' named queue (option queue).
func (b Builder) Queue(name string) Builder { b.e.Options.Queue = name; return b }

// Priority sets the jobs' priority (option priority); lower runs first.
func (b Builder) Priority(p int) Builder { b.e.Options.Priority = p; return b }

// JobKey sets the jobs' job key (option jobKey). The mode defaults to
// JobKeyModeReplace.
func (b Builder) JobKey(key string) Builder { b.e.Options.JobKey = key; return b }

// JobKeyMode sets JobKeyModeReplace or JobKeyModePreserveRunAt (option
// jobKeyMode); it needs a JobKey.
func (b Builder) JobKeyMode(mode string) Builder { b.e.Options.JobKeyMode = mode; return b }

// Payload sets the job payload to v marshalled with encoding/json (without
// HTML escaping). It must marshal to a JSON object; nil removes the payload.
func (b Builder) Payload(v any) Builder {
	if v == nil {
		b.e.Payload = nil
		return b
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return b.fail(fmt.Errorf("cronspec: payload: %w", err))
	}
	p := bytes.TrimRight(buf.Bytes(), "\n")
	if len(p) == 0 || p[0] != '{' {
		return b.fail(fmt.Errorf("cronspec: payload: expected a value that marshals to a JSON object, got %.20s", p))
	}
	b.e.Payload = json.RawMessage(p)
	return b
}

// TZ sets the time zone the schedule is read in (option tz), by IANA name
// such as "Europe/Paris"; "UTC" is the default.
func (b Builder) TZ(name string) Builder {
	loc, err := loadZone(name)
	if err != nil {
		return b.fail(fmt.Errorf("cronspec: tz %q: %w", name, err))
	}
	b.e.Schedule.Location = loc
	return b
}

// Location sets the time zone the schedule is read in. It must be UTC or a
// zone loaded by name (time.LoadLocation), so that the entry can be written as
// a crontab line; see TZ.
func (b Builder) Location(loc *time.Location) Builder {
	if loc == time.UTC {
		loc = nil // the schedule's spelling of UTC
	}
	b.e.Schedule.Location = loc
	return b
}

// Entry returns the built entry, or an error naming each bad value.
func (b Builder) Entry() (Entry, error) {
	e := b.e
	if e.Options.JobKey != "" && e.Options.JobKeyMode == "" {
		e.Options.JobKeyMode = JobKeyModeReplace
	}
	errs := append([]error(nil), b.errs...)
	if err := e.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return Entry{}, err
	}
	return e, nil
}
