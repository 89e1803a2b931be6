package cronspec

import (
	"math/bits"
	"strconv"
	"strings"
	"time"
)

// Set is a set of small non-negative integers (0-63), one bit per value. The
// five time fields of a Schedule are Sets.
type Set uint64

// Has reports whether v is in the set.
func (s Set) Has(v int) bool {
	return v >= 0 && v < 64 && s&(1<<uint(v)) != 0
}

// Len returns the number of values in the set.
func (s Set) Len() int { return bits.OnesCount64(uint64(s)) }

// Values returns the values in the set in increasing order.
func (s Set) Values() []int {
	vals := make([]int, 0, s.Len())
	for v := 0; v < 64; v++ {
		if s.Has(v) {
			vals = append(vals, v)
		}
	}
	return vals
}

// span returns the set of all values from lo to hi inclusive.
func span(lo, hi int) Set {
	var s Set
	for v := lo; v <= hi; v++ {
		s |= 1 << uint(v)
	}
	return s
}

// step returns {lo, lo+n, lo+2n, ...} up to hi, which is what "*/n" means.
func step(lo, hi, n int) Set {
	var s Set
	for v := lo; v <= hi; v += n {
		s |= 1 << uint(v)
	}
	return s
}

// field describes one of the five time fields.
type field struct {
	name   string
	lo, hi int
	wrap   bool // day of week: hi+1 (7) means lo (0, Sunday)
}

var fields = [5]field{
	{name: "minute", lo: 0, hi: 59},
	{name: "hour", lo: 0, hi: 23},
	{name: "day-of-month", lo: 1, hi: 31},
	{name: "month", lo: 1, hi: 12},
	{name: "day-of-week", lo: 0, hi: 6, wrap: true},
}

func (f field) all() Set { return span(f.lo, f.hi) }

// rangeText is how the field's valid values are described in errors.
func (f field) rangeText() string {
	if f.wrap {
		return "0-7 (0 and 7 are Sunday)"
	}
	return strconv.Itoa(f.lo) + "-" + strconv.Itoa(f.hi)
}

var (
	allMinutes  = fields[0].all()
	allHours    = fields[1].all()
	allDays     = fields[2].all()
	allMonths   = fields[3].all()
	allWeekdays = fields[4].all()
)

// Schedule says at which minutes an entry fires. Each field is the set of
// values it matches; Parse, ParseSchedule and the builders (DailyAt, ...)
// produce them. A field holding all of its values behaves like "*".
//
// Matching follows graphile-worker: a minute matches when its minute, hour
// and month are in their sets and its day matches. The day rule is cron's:
// when both DayOfMonth and DayOfWeek are restricted (neither holds all its
// values), a day matches if either does; when only one is restricted, it alone
// decides; when neither is, every day matches.
type Schedule struct {
	Minute     Set // 0-59
	Hour       Set // 0-23
	DayOfMonth Set // 1-31
	Month      Set // 1-12 (January is 1)
	DayOfWeek  Set // 0-6 (Sunday is 0)
	// Location is the time zone the fields are read in. Nil means UTC,
	// which is graphile-worker's only behaviour. See the package
	// documentation for what happens at daylight-saving changes.
	Location *time.Location
}

// DayOfMonthRestricted reports whether the day-of-month field leaves out
// some day, which decides how it combines with the day of week.
func (s Schedule) DayOfMonthRestricted() bool { return s.DayOfMonth&allDays != allDays }

// DayOfWeekRestricted reports whether the day-of-week field leaves out some
// weekday, which decides how it combines with the day of month.
func (s Schedule) DayOfWeekRestricted() bool { return s.DayOfWeek&allWeekdays != allWeekdays }

func (s Schedule) loc() *time.Location {
	if s.Location == nil {
		return time.UTC
	}
	return s.Location
}

// zoneName is the name of the schedule's zone, "UTC" when Location is nil.
func (s Schedule) zoneName() string { return s.loc().String() }

// Equal reports whether both schedules have the same fields and zones of the
// same name (a nil Location equals time.UTC).
func (s Schedule) Equal(o Schedule) bool {
	return s.Minute == o.Minute && s.Hour == o.Hour && s.DayOfMonth == o.DayOfMonth &&
		s.Month == o.Month && s.DayOfWeek == o.DayOfWeek && s.zoneName() == o.zoneName()
}

// dayMatches applies cron's day-of-month / day-of-week rule to a date.
func (s Schedule) dayMatches(dom int, dow time.Weekday) bool {
	domR, dowR := s.DayOfMonthRestricted(), s.DayOfWeekRestricted()
	switch {
	case domR && dowR:
		return s.DayOfMonth.Has(dom) || s.DayOfWeek.Has(int(dow))
	case domR:
		return s.DayOfMonth.Has(dom)
	case dowR:
		return s.DayOfWeek.Has(int(dow))
	default:
		return true
	}
}

// matchesWall reports whether a wall-clock minute (given as a UTC time whose
// fields are the local fields) matches the five fields.
func (s Schedule) matchesWall(w time.Time) bool {
	return s.Minute.Has(w.Minute()) && s.Hour.Has(w.Hour()) && s.Month.Has(int(w.Month())) &&
		s.dayMatches(w.Day(), w.Weekday())
}

// wall returns t's local wall clock in loc, truncated to the minute, as a UTC
// time carrying the local fields, and loc's UTC offset at t in seconds.
func wall(t time.Time, loc *time.Location) (time.Time, int) {
	lt := t.In(loc)
	_, off := lt.Zone()
	return time.Date(lt.Year(), lt.Month(), lt.Day(), lt.Hour(), lt.Minute(), 0, 0, time.UTC), off
}

// ceilMinute rounds t up to a whole minute.
func ceilMinute(t time.Time) time.Time {
	tr := t.Truncate(time.Minute)
	if tr.Before(t) {
		tr = tr.Add(time.Minute)
	}
	return tr
}

// prevOffset returns the zone period t is in (its start, zero if it has none)
// and the UTC offset in force just before that start.
func prevOffset(t time.Time, loc *time.Location) (start time.Time, prev int) {
	start, _ = t.In(loc).ZoneBounds()
	if start.IsZero() {
		return start, 0
	}
	_, prev = start.Add(-time.Second).In(loc).Zone()
	return start, prev
}

// Matches reports whether the schedule fires at the minute containing t,
// read in the schedule's zone (UTC when Location is nil). Without a zone this
// is exactly graphile-worker's test on the UTC minute.
//
// With a zone that changes its offset, Matches also applies the
// daylight-saving rules described in the package documentation: when the hour
// field is restricted, a wall-clock time that occurs twice fires only the
// first time, and matching wall-clock times skipped by a jump forward fire
// once at the first minute after the jump.
func (s Schedule) Matches(t time.Time) bool {
	t = t.Truncate(time.Minute)
	loc := s.loc()
	w, off := wall(t, loc)
	if loc == time.UTC || s.Hour&allHours == allHours {
		// Every hour fires: read the wall clock of each real minute.
		return s.matchesWall(w)
	}
	start, prev := prevOffset(t, loc)
	if start.IsZero() || prev == off {
		return s.matchesWall(w)
	}
	if prev > off {
		// Clocks went back at start: wall times from start+off up to
		// start+prev happen for the second time. Fire only the first.
		repeated := t.Before(start.Add(time.Duration(prev-off) * time.Second))
		return !repeated && s.matchesWall(w)
	}
	if s.matchesWall(w) {
		return true
	}
	// Clocks jumped forward at start, skipping wall times from start+prev
	// up to start+off. The first minute after the jump stands in for them.
	if !t.Equal(ceilMinute(start)) {
		return false
	}
	from := ceilMinute(time.Unix(start.Unix()+int64(prev), 0).UTC())
	to := time.Unix(start.Unix()+int64(off), 0).UTC()
	for g := from; g.Before(to); g = g.Add(time.Minute) {
		if s.matchesWall(g) {
			return true
		}
	}
	return false
}

// nextSearchYears bounds the search of Next. Every date that exists at all
// comes back within 8 years (February 29th across a non-leap century year).
const nextSearchYears = 10

// Next returns the first whole minute strictly after `after` at which the
// schedule fires (see Matches), in the schedule's location (UTC when Location
// is nil). It returns the zero Time when the schedule never fires, which
// happens only for dates that do not exist, such as "0 0 30 2 *"
// (graphile-worker accepts such lines; they never run).
func (s Schedule) Next(after time.Time) time.Time {
	if !s.possible() {
		return time.Time{}
	}
	loc := s.loc()
	t := after.Truncate(time.Minute).Add(time.Minute)
	limit := after.AddDate(nextSearchYears, 0, 0)
	for !t.After(limit) {
		if s.Matches(t) {
			return t.In(loc)
		}
		t = s.advance(t, loc)
	}
	return time.Time{}
}

// advance returns the next instant worth testing after t (a whole minute that
// did not match): it skips whole months, days and hours whose wall-clock
// fields cannot match, but never past a change of the zone's offset, where
// the daylight-saving rules of Matches apply.
func (s Schedule) advance(t time.Time, loc *time.Location) time.Time {
	w, _ := wall(t, loc)
	var nw time.Time
	switch {
	case !s.Month.Has(int(w.Month())):
		nw = time.Date(w.Year(), w.Month()+1, 1, 0, 0, 0, 0, time.UTC)
	case !s.dayMatches(w.Day(), w.Weekday()):
		nw = time.Date(w.Year(), w.Month(), w.Day()+1, 0, 0, 0, 0, time.UTC)
	default:
		// The next wanted minute of this hour, or the next hour.
		hour := w.Truncate(time.Hour)
		nw = hour.Add(time.Hour)
		if s.Hour.Has(w.Hour()) {
			for m := w.Minute() + 1; m < 60; m++ {
				if s.Minute.Has(m) {
					nw = hour.Add(time.Duration(m) * time.Minute)
					break
				}
			}
		}
	}
	next := t.Add(nw.Sub(w))
	if loc != time.UTC {
		if _, end := t.In(loc).ZoneBounds(); !end.IsZero() {
			if ce := ceilMinute(end); ce.After(t) && next.After(ce) {
				next = ce
			}
		}
	}
	return next
}

// daysInMonth is the most days each month can have (February 29 exists).
var daysInMonth = [13]int{0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}

// possible reports whether the schedule matches any minute at all.
func (s Schedule) possible() bool {
	if s.Minute&allMinutes == 0 || s.Hour&allHours == 0 || s.Month&allMonths == 0 {
		return false
	}
	domOK := false
	for m := 1; m <= 12; m++ {
		if s.Month.Has(m) && s.DayOfMonth&span(1, daysInMonth[m]) != 0 {
			domOK = true
		}
	}
	dowOK := s.DayOfWeek&allWeekdays != 0
	domR, dowR := s.DayOfMonthRestricted(), s.DayOfWeekRestricted()
	switch {
	case domR && dowR:
		return domOK || dowOK
	case domR:
		return domOK
	case dowR:
		return dowOK
	default:
		return true
	}
}

// String returns the five time fields in crontab syntax, e.g. "30 4 * * *".
// Each field is written as "*", "*/n" or a comma list of numbers and ranges;
// the zone is not included (Entry.String writes it as the tz option).
func (s Schedule) String() string {
	sets := [5]Set{s.Minute, s.Hour, s.DayOfMonth, s.Month, s.DayOfWeek}
	parts := make([]string, 5)
	for i, f := range fields {
		parts[i] = f.format(sets[i])
	}
	return strings.Join(parts, " ")
}

// format writes a set in the shortest of the forms the parser reads back to
// the same set. Values outside the field's range are dropped.
func (f field) format(s Set) string {
	s &= f.all()
	if s == f.all() {
		return "*"
	}
	if s.Len() >= 2 {
		for n := 2; n <= f.hi-f.lo; n++ {
			if s == step(f.lo, f.hi, n) {
				return "*/" + strconv.Itoa(n)
			}
		}
	}
	var b strings.Builder
	for v := f.lo; v <= f.hi; v++ {
		if !s.Has(v) {
			continue
		}
		end := v
		for end+1 <= f.hi && s.Has(end+1) {
			end++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(v))
		if end > v {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(end))
		}
		v = end
	}
	return b.String()
}
