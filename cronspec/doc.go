// Package cronspec reads graphile-worker crontabs, builds the same entries in
// typed Go, and computes when they fire. It is pure: no I/O and no database
// (the cron runner in package core schedules the jobs), and it depends on the
// standard library only.
//
// # Crontab lines
//
// A crontab has one entry per line. Blank lines and lines whose first
// non-blank character is # are skipped. An entry is
//
//	MINUTE HOUR DAY-OF-MONTH MONTH DAY-OF-WEEK TASK [?OPTIONS] [{PAYLOAD}]
//
// separated by white space, for example
//
//	# every day at 04:30 UTC, back-filling runs missed in the last 2 hours
//	30 4 * * * send_report ?fill=2h&queue=reports {to: 'ops', format: "pdf",}
//	# every 15 minutes on weekdays, in Paris time
//	*/15 * * * 1-5 poll_feeds ?tz=Europe/Paris&max=3
//
// Each time field is a comma-separated list of
//
//	n      a number
//	a-b    a range, b > a (so 5-5 is an error, as in graphile-worker)
//	*      every value
//	*/n    every n-th value from the lowest: lowest, lowest+n, ... (n ≥ 1)
//
// with minute 0-59, hour 0-23, day of month 1-31, month 1-12 and day of week
// 0-6 (Sunday is 0; 7 is also accepted for Sunday). There are no names (JAN,
// MON), no stepped ranges (1-10/2), and no L, W, # or ?, as in graphile-worker.
//
// TASK is a task identifier: a letter or _ followed by letters, digits and
// _ - : / (at most 128 characters).
//
// OPTIONS is a query string, key=value pairs joined by & and %-encoded where
// needed (+ is a space). Each key may appear once:
//
//	id          the entry's identifier; defaults to TASK; must be unique in the
//	            crontab (a letter or _, then letters, digits, _ and -)
//	fill        back-fill period: how far back missed runs are caught up at
//	            start-up, e.g. 1w2d3h4m5s (units w, d, h, m, s, each at most
//	            once and in that order)
//	max         max attempts of the jobs, 1-32767 (default 25)
//	queue       named queue of the jobs (letters, digits, _ - :)
//	priority    priority of the jobs, -32768 to 32767, lower runs first
//	jobKey      job key of the jobs
//	jobKeyMode  replace (the default when jobKey is set) or preserve_run_at;
//	            an error without jobKey
//	tz          the time zone the schedule is read in (gworker only, see below)
//
// PAYLOAD is a JSON5 object (https://spec.json5.org): unquoted keys, single
// quotes, trailing commas, comments, hexadecimal numbers and the rest. It is
// stored as the JSON that graphile-worker stores for it: numbers are doubles
// written the way JavaScript writes them (0x1F is 31), repeated keys keep the
// last value, and integer-like keys come first. Unlike Node, Infinity and NaN
// are rejected rather than turned into null.
//
// # Matching
//
// A schedule fires at most once per minute. A minute matches when its minute,
// hour and month are in their fields and its day matches. If both the
// day-of-month and the day-of-week fields are restricted (each leaves out at
// least one value), a day matches when either does: "0 0 13 * 5" fires on
// every 13th and on every Friday. If only one is restricted, it alone
// decides; "*", "*/1" and "1-31" are all unrestricted. This is
// graphile-worker's rule, and it differs from the Rust port, which requires
// both; the Rust port also never matches a day of week 0, which here is
// Sunday.
//
// Without a tz option every field is read in UTC, exactly as graphile-worker
// does. Schedule.Matches tests one minute; Schedule.Next finds the next one.
//
// # Time zones
//
// gworker goes beyond graphile-worker (which is UTC only, see its issue
// #334) with the option tz, an IANA zone name loaded with time.LoadLocation:
//
//	0 9 * * 1-5 standup_reminder ?tz=America/New_York
//
// We chose an option over the CRON_TZ=Zone prefix of some crons because an
// option keeps one line one self-contained entry, which can be moved, sorted
// or deleted without changing the meaning of the lines after it; because it
// uses the option mechanism every other per-entry setting already uses, with
// the same error reporting; and because a CRON_TZ line is neither a comment
// nor an entry for graphile-worker, so a Node worker would stop at it with a
// confusing error, whereas an unknown option gets a clear one. Write
// Etc/GMT+5 as Etc/GMT%2B5, since + means a space in a query string. Programs
// running where the system has no zoneinfo files can import time/tzdata.
//
// # Daylight-saving time
//
// With a zone whose offset changes, two things can happen to local times:
//
//   - Spring forward: the clock jumps, e.g. from 02:00 to 03:00, so 02:30
//     never happens that day.
//   - Fall back: the clock goes back, e.g. from 03:00 to 02:00, so 02:30
//     happens twice, an hour apart.
//
// gworker handles them the way classic cron does, so that a job meant for a
// time of day runs once that day and a job meant for every hour keeps running
// every real hour:
//
//   - When the hour field is restricted (a time of day, like "30 2 * * *"),
//     matching local times that a jump forward skips fire once, at the first
//     minute after the jump (03:00 local time in the example); and a local
//     time that happens twice fires only the first time.
//   - When the hour field is "*" (like "30 * * * *" or "*/5 * * * *"), every
//     real minute is matched on its local wall clock: minutes a jump skips
//     do not exist and do not fire, and a repeated hour fires again.
//
// Schedule.Next returns instants as time.Time values in the schedule's zone
// (UTC without one); compare them with time.Time.Equal. Offsets are assumed to
// be whole minutes, as they are in every zone today.
//
// # Differences from graphile-worker's parser
//
// Everything graphile-worker 0.18 accepts is accepted, except values that
// would fail later or never do what was meant:
//
//   - max must be at least 1, max and priority must fit a smallint, and a
//     task identifier or queue name must fit the database's 128 characters;
//   - jobKey must be 1-512 characters without line breaks, and jobKeyMode
//     without jobKey is an error (Node ignores it);
//   - a fill period writes its units in the order w d h m s, each once
//     (Node also takes 2h1d and 1m1m);
//   - payload numbers must be finite (Node turns Infinity, NaN and 1e400
//     into null) and strings must not hold lone UTF-16 surrogates;
//   - a line must be valid UTF-8, and so must %-escapes once decoded.
//
// And gworker adds the tz option, which Node rejects as an unknown key.
//
// # Building entries in Go
//
// The builders give the same entries without text:
//
//	e, err := cronspec.DailyAt(4, 30, "send_report").
//		Fill(2 * time.Hour).
//		Queue("reports").
//		Payload(map[string]any{"to": "ops"}).
//		Entry()
//
// Entry applies the rules Parse applies and returns an error naming each bad
// value. Entry.String writes an entry back as a crontab line that Parse reads
// to an equal entry, which is handy for logs and for the command line.
package cronspec
