package cronspec

import (
	"testing"
	"time"
)

// nextChain returns n successive Next results from after, as UTC strings.
func nextChain(s Schedule, after time.Time, n int) []string {
	var got []string
	t := after
	for i := 0; i < n; i++ {
		t = s.Next(t)
		if t.IsZero() {
			got = append(got, "never")
			break
		}
		got = append(got, t.UTC().Format("2006-01-02T15:04"))
	}
	return got
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestNextFollowsNodeRules(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, spec, after string
		want              []string
	}{
		{"dom and dow restricted: either matches", "0 0 13 * 5", "2025-06-01T00:00", []string{
			"2025-06-06T00:00", "2025-06-13T00:00", "2025-06-20T00:00", "2025-06-27T00:00",
			"2025-07-04T00:00", "2025-07-11T00:00", "2025-07-13T00:00", "2025-07-18T00:00"}},
		{"dom restricted, dow star: dom alone", "0 0 13 * *", "2025-06-01T00:00", []string{
			"2025-06-13T00:00", "2025-07-13T00:00", "2025-08-13T00:00"}},
		{"dow restricted, dom star: dow alone", "0 0 * * 5", "2025-06-01T00:00", []string{
			"2025-06-06T00:00", "2025-06-13T00:00", "2025-06-20T00:00"}},
		{"dow */1 is unrestricted", "0 0 13 * */1", "2025-06-01T00:00", []string{
			"2025-06-13T00:00", "2025-07-13T00:00"}},
		{"dom 1-31 is unrestricted", "0 0 1-31 * 5", "2025-06-01T00:00", []string{
			"2025-06-06T00:00", "2025-06-13T00:00"}},
		{"Sunday as 0", "0 0 * * 0", "2025-05-27T00:00", []string{"2025-06-01T00:00", "2025-06-08T00:00"}},
		{"Sunday as 7", "0 0 * * 7", "2025-05-27T00:00", []string{"2025-06-01T00:00", "2025-06-08T00:00"}},
		{"weekend as 6-7", "0 0 * * 6-7", "2025-05-27T00:00", []string{"2025-05-31T00:00", "2025-06-01T00:00", "2025-06-07T00:00"}},
		{"February 29", "0 0 29 2 *", "2025-03-01T00:00", []string{"2028-02-29T00:00", "2032-02-29T00:00"}},
		{"February 29 across 2100", "0 0 29 2 *", "2096-03-01T00:00", []string{"2104-02-29T00:00"}},
		{"31st skips short months", "0 0 31 * *", "2025-04-01T00:00", []string{
			"2025-05-31T00:00", "2025-07-31T00:00", "2025-08-31T00:00", "2025-10-31T00:00", "2025-12-31T00:00", "2026-01-31T00:00"}},
		{"February 30 or a Monday", "0 0 30 2 1", "2025-03-01T00:00", []string{"2026-02-02T00:00", "2026-02-09T00:00"}},
		{"every 20 minutes", "*/20 * * * *", "2025-01-01T00:00", []string{"2025-01-01T00:20", "2025-01-01T00:40", "2025-01-01T01:00"}},
		{"last minute of the year", "59 23 31 12 *", "2025-01-01T00:00", []string{"2025-12-31T23:59", "2026-12-31T23:59"}},
		{"weekdays in February", "0 12 * 2 1-5", "2025-01-31T12:00", []string{"2025-02-03T12:00", "2025-02-04T12:00"}},
		{"no zone means UTC", "30 2 * * *", "2025-03-29T12:00", []string{"2025-03-30T02:30", "2025-03-31T02:30"}},
		{"February 30 never", "0 0 30 2 *", "2025-03-01T00:00", []string{"never"}},
		{"31st of 30-day months never", "0 0 31 4,6,9,11 *", "2025-03-01T00:00", []string{"never"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := mustSchedule(t, tc.spec)
			if got := nextChain(s, utc(t, tc.after), len(tc.want)); !equalStrings(got, tc.want) {
				t.Fatalf("%q after %s:\n got %v\nwant %v", tc.spec, tc.after, got, tc.want)
			}
		})
	}
}

func TestNextIsStrictlyAfter(t *testing.T) {
	t.Parallel()
	s := daily(4, 30)
	at := time.Date(2025, 6, 1, 4, 30, 0, 0, time.UTC)
	for _, tc := range []struct {
		after time.Time
		want  time.Time
	}{
		{at, at.AddDate(0, 0, 1)},
		{at.Add(-time.Nanosecond), at},
		{at.Add(-time.Minute), at},
		{at.Add(30 * time.Second), at.AddDate(0, 0, 1)},
		{at.In(time.FixedZone("X", 5*3600)), at.AddDate(0, 0, 1)},
	} {
		if got := s.Next(tc.after); !got.Equal(tc.want) || got.Location() != time.UTC {
			t.Errorf("Next(%v) = %v, want %v in UTC", tc.after, got, tc.want)
		}
	}
}

func TestNextNeverFires(t *testing.T) {
	t.Parallel()
	after := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, s := range []Schedule{
		{},
		mustSchedule(t, "0 0 30 2 *"),
		mustSchedule(t, "0 0 30,31 2 *"),
		{Minute: allMinutes, Hour: allHours, DayOfMonth: allDays, Month: allMonths}, // no weekday
	} {
		if got := s.Next(after); !got.IsZero() {
			t.Errorf("Next of %+v = %v, want zero", s, got)
		}
	}
}

func TestMatches(t *testing.T) {
	t.Parallel()
	sunday := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC) // a Sunday
	for _, tc := range []struct {
		spec string
		t    time.Time
		want bool
	}{
		{"0 0 * * 0", sunday, true},
		{"0 0 * * 7", sunday, true},
		{"0 0 * * 1-6", sunday, false},
		{"0 0 * * 0", sunday.Add(59*time.Second + 999*time.Millisecond), true}, // same minute
		{"0 0 * * 0", sunday.Add(time.Minute), false},
		{"0 0 13 * 0", sunday, true},                                  // Sunday, though not the 13th
		{"0 0 13 * 1", sunday, false},                                 // neither
		{"0 0 1 * 1", sunday, true},                                   // the 1st, though not Monday
		{"0 0 2 * *", sunday, false},                                  // dom alone decides
		{"0 0 * 6 *", sunday, true},                                   // June
		{"0 2 * * *", sunday.In(time.FixedZone("CEST", 7200)), false}, // read in UTC
	} {
		s := mustSchedule(t, tc.spec)
		if got := s.Matches(tc.t); got != tc.want {
			t.Errorf("%q Matches(%v) = %v, want %v", tc.spec, tc.t, got, tc.want)
		}
	}
}

func TestNextDaylightSaving(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, zone, spec, after string
		want                    []string // UTC
	}{
		// Europe/Paris springs forward on 2025-03-30 at 01:00Z (02:00 CET -> 03:00 CEST).
		{"time of day in the gap fires after the gap", "Europe/Paris", "30 2 * * *", "2025-03-29T00:00", []string{
			"2025-03-29T01:30", // 02:30 CET
			"2025-03-30T01:00", // 03:00 CEST, standing in for the missing 02:30
			"2025-03-31T00:30", // 02:30 CEST
		}},
		{"start of the gap", "Europe/Paris", "0 2 * * *", "2025-03-29T12:00", []string{"2025-03-30T01:00", "2025-03-31T00:00"}},
		{"end of the gap fires once", "Europe/Paris", "0 3 * * *", "2025-03-29T12:00", []string{"2025-03-30T01:00", "2025-03-31T01:00"}},
		{"a whole hour in the gap fires once", "Europe/Paris", "* 2 * * *", "2025-03-29T23:00", []string{
			"2025-03-30T01:00", "2025-03-31T00:00", "2025-03-31T00:01"}},
		{"every hour skips the missing hour", "Europe/Paris", "30 * * * *", "2025-03-29T23:00", []string{
			"2025-03-29T23:30", "2025-03-30T00:30", "2025-03-30T01:30", "2025-03-30T02:30"}},
		// Europe/Paris falls back on 2025-10-26 at 01:00Z (03:00 CEST -> 02:00 CET).
		{"repeated time of day fires once", "Europe/Paris", "30 2 * * *", "2025-10-25T12:00", []string{
			"2025-10-26T00:30", // 02:30 CEST; 02:30 CET at 01:30Z is skipped
			"2025-10-27T01:30", // 02:30 CET
		}},
		{"repeated hour fires the first time", "Europe/Paris", "*/20 2 * * *", "2025-10-25T23:59", []string{
			"2025-10-26T00:00", "2025-10-26T00:20", "2025-10-26T00:40", "2025-10-27T01:00"}},
		{"every hour fires in both repeated hours", "Europe/Paris", "30 * * * *", "2025-10-25T23:00", []string{
			"2025-10-25T23:30", "2025-10-26T00:30", "2025-10-26T01:30", "2025-10-26T02:30"}},
		// America/New_York: 2025-03-09 07:00Z (2:00 EST -> 3:00 EDT); 2025-11-02 06:00Z (2:00 EDT -> 1:00 EST).
		{"New York spring forward", "America/New_York", "30 2 * * *", "2025-03-08T12:00", []string{"2025-03-09T07:00", "2025-03-10T06:30"}},
		{"New York fall back", "America/New_York", "30 1 * * *", "2025-11-01T12:00", []string{"2025-11-02T05:30", "2025-11-03T06:30"}},
		{"New York hourly in fall back", "America/New_York", "0 * * * *", "2025-11-02T04:30", []string{
			"2025-11-02T05:00", "2025-11-02T06:00", "2025-11-02T07:00"}},
		{"New York weekdays at nine", "America/New_York", "0 9 * * 1-5", "2025-03-07T15:00", []string{"2025-03-10T13:00", "2025-03-11T13:00"}},
		// Lord Howe Island moves by 30 minutes: 2025-10-05 02:00 -> 02:30 local (15:30Z on the 4th).
		{"half-hour gap", "Australia/Lord_Howe", "15 2 * * *", "2025-10-04T12:00", []string{"2025-10-04T15:30", "2025-10-05T15:15"}},
		// Samoa skipped 2011-12-30 entirely (-10:00 -> +14:00 at 10:00Z).
		{"a skipped day fires once after it", "Pacific/Apia", "0 12 * * *", "2011-12-29T12:00", []string{
			"2011-12-29T22:00", "2011-12-30T10:00", "2011-12-30T22:00"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := mustSchedule(t, tc.spec)
			s.Location = mustZone(t, tc.zone)
			if got := nextChain(s, utc(t, tc.after), len(tc.want)); !equalStrings(got, tc.want) {
				t.Fatalf("%q in %s after %s:\n got %v\nwant %v", tc.spec, tc.zone, tc.after, got, tc.want)
			}
			if got := s.Next(utc(t, tc.after)); got.Location() != s.Location {
				t.Errorf("Next returned a time in %v, want %v", got.Location(), s.Location)
			}
		})
	}
}

func TestMatchesDaylightSaving(t *testing.T) {
	t.Parallel()
	paris := mustZone(t, "Europe/Paris")
	for _, tc := range []struct {
		spec, at string
		want     bool
	}{
		{"30 2 * * *", "2025-10-26T00:30", true},  // 02:30 CEST, first
		{"30 2 * * *", "2025-10-26T01:30", false}, // 02:30 CET, repeated
		{"30 * * * *", "2025-10-26T01:30", true},  // every hour: repeated is fine
		{"30 2 * * *", "2025-03-30T01:00", true},  // 03:00 CEST, first minute after the gap
		{"30 2 * * *", "2025-03-30T01:01", false},
		{"30 * * * *", "2025-03-30T01:00", false}, // every hour: no stand-in
		{"0 3 * * *", "2025-03-30T01:00", true},
	} {
		s := mustSchedule(t, tc.spec)
		s.Location = paris
		if got := s.Matches(utc(t, tc.at)); got != tc.want {
			t.Errorf("%q in Paris Matches(%sZ) = %v, want %v", tc.spec, tc.at, got, tc.want)
		}
	}
}

// TestNextAgreesWithMatches checks Next's skipping against a minute-by-minute
// scan with Matches, around daylight-saving changes and in UTC.
func TestNextAgreesWithMatches(t *testing.T) {
	t.Parallel()
	specs := []string{
		"* * * * *", "30 2 * * *", "0 2 * * *", "0 3 * * *", "* 2 * * *", "30 * * * *", "*/7 1-3 * * *",
		"0 0 13 * 5", "15 2,3 * * 0", "59 23 * * *", "0 0 1 * *", "45 1 26 10 *", "0 2 30 3 *",
		"5,35 * * * *", "0,30 2 * * *", "0 0 29 2 *", "*/10 0-2 * * 6-7",
	}
	windows := []struct {
		zone, start string
	}{
		{"UTC", "2025-02-27T00:00"},
		{"UTC", "2028-02-27T00:00"},
		{"Europe/Paris", "2025-03-29T00:00"},
		{"Europe/Paris", "2025-10-25T00:00"},
		{"America/New_York", "2025-03-08T00:00"},
		{"America/New_York", "2025-11-01T00:00"},
		{"Australia/Lord_Howe", "2025-10-03T12:00"},
		{"Pacific/Apia", "2011-12-28T12:00"},
	}
	const scan = 3 * 24 * 60 // minutes
	for _, w := range windows {
		for _, spec := range specs {
			t.Run(w.zone+"/"+spec, func(t *testing.T) {
				t.Parallel()
				s := mustSchedule(t, spec)
				if w.zone != "UTC" {
					s.Location = mustZone(t, w.zone)
				}
				start := utc(t, w.start)
				var fires []time.Time
				for m := 1; m <= scan; m++ {
					if at := start.Add(time.Duration(m) * time.Minute); s.Matches(at) {
						fires = append(fires, at)
					}
				}
				end := start.Add(scan * time.Minute)
				cur := start
				for _, want := range fires {
					got := s.Next(cur)
					if !got.Equal(want) {
						t.Fatalf("Next(%v) = %v, want %v", cur.UTC(), got.UTC(), want.UTC())
					}
					cur = got
				}
				if got := s.Next(cur); !got.IsZero() && !got.After(end) {
					t.Fatalf("Next(%v) = %v, but Matches found nothing more before %v", cur.UTC(), got.UTC(), end.UTC())
				}
			})
		}
	}
}
