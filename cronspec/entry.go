package cronspec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Job key modes a cron entry may use (graphile-worker's job_key_mode; the
// database's third mode, unsafe_dedupe, is not accepted in a crontab).
const (
	JobKeyModeReplace       = "replace"
	JobKeyModePreserveRunAt = "preserve_run_at"
)

// Limits checked by Parse, the builders and Entry.Validate. They are the
// database's (length checks and smallint columns); graphile-worker's parser
// does not check them, so there a bad value fails only when the job is added.
const (
	MaxTaskLength    = 128   // task identifiers (_private_tasks.identifier)
	MaxQueueLength   = 128   // queue names (_private_job_queues.queue_name)
	MaxJobKeyLength  = 512   // job keys (_private_jobs.key)
	MaxAttemptsLimit = 32767 // max attempts is a smallint, at least 1
	MinPriority      = -32768
	MaxPriority      = 32767
)

// Crontab is a parsed crontab: its entries in the order of their lines.
type Crontab []Entry

// Entry is one crontab line: when to run, which task, and how to add its job.
type Entry struct {
	// Identifier names the entry in _private_known_crontabs, which is what
	// de-duplicates and back-fills its runs. It is the id option, or the
	// task identifier when there is none; it is unique within a crontab.
	Identifier string
	// Task is the task identifier of the jobs the entry adds.
	Task string
	// Schedule says when the entry fires.
	Schedule Schedule
	// Options are how the jobs are added.
	Options Options
	// Payload is the job payload as JSON (always an object), converted from
	// the line's JSON5; nil when the line has none. The runner adds the
	// _cron key to it.
	Payload json.RawMessage
	// Line is the 1-based line the entry came from; 0 when it was built in
	// code. Equal ignores it.
	Line int
}

// Options are the query-string options of a crontab line. The zero value
// of each field means "not set" and gives graphile-worker's default.
type Options struct {
	// Fill is how far back, from start-up, missed runs are back-filled
	// (option fill, e.g. 1w2d3h4m5s). 0: no back-fill.
	Fill time.Duration
	// MaxAttempts of the jobs (option max, 1-32767). 0: the database
	// default, 25.
	MaxAttempts int
	// Queue is the named queue of the jobs (option queue). "": none, so
	// the jobs run in parallel.
	Queue string
	// Priority of the jobs (option priority); lower runs first. 0 is
	// also the default.
	Priority int
	// JobKey of the jobs (option jobKey). "": no key.
	JobKey string
	// JobKeyMode is JobKeyModeReplace or JobKeyModePreserveRunAt when
	// JobKey is set (replace when not given), and "" otherwise.
	JobKeyMode string
}

// Equal reports whether two entries are the same, ignoring Line.
func (e Entry) Equal(o Entry) bool {
	return e.Identifier == o.Identifier && e.Task == o.Task && e.Schedule.Equal(o.Schedule) &&
		e.Options == o.Options && bytes.Equal(e.Payload, o.Payload)
}

// String returns the entry as a crontab line that Parse reads back to an
// equal entry (except for payload numbers a double cannot hold exactly),
// e.g. "30 4 * * * send_report ?fill=2h&tz=Europe/Paris {\"to\":\"ops\"}".
func (e Entry) String() string {
	var b strings.Builder
	b.WriteString(e.Schedule.String())
	b.WriteByte(' ')
	b.WriteString(e.Task)
	var opts []string
	add := func(k, v string) { opts = append(opts, k+"="+escapeOption(v)) }
	o := e.Options
	if e.Identifier != "" && e.Identifier != e.Task {
		add("id", e.Identifier)
	}
	if o.Fill > 0 {
		add("fill", formatFill(o.Fill))
	}
	if o.MaxAttempts != 0 {
		add("max", strconv.Itoa(o.MaxAttempts))
	}
	if o.Queue != "" {
		add("queue", o.Queue)
	}
	if o.Priority != 0 {
		add("priority", strconv.Itoa(o.Priority))
	}
	if o.JobKey != "" {
		add("jobKey", o.JobKey)
	}
	if o.JobKeyMode != "" && o.JobKeyMode != JobKeyModeReplace {
		add("jobKeyMode", o.JobKeyMode)
	}
	if name := e.Schedule.zoneName(); name != "UTC" {
		add("tz", name)
	}
	if len(opts) > 0 {
		b.WriteString(" ?")
		b.WriteString(strings.Join(opts, "&"))
	}
	if len(e.Payload) > 0 {
		b.WriteByte(' ')
		var compact bytes.Buffer
		if json.Compact(&compact, e.Payload) == nil {
			b.Write(compact.Bytes())
		} else {
			b.Write(e.Payload)
		}
	}
	return b.String()
}

// String returns the crontab as text, one line per entry (see Entry.String).
func (c Crontab) String() string {
	var b strings.Builder
	for _, e := range c {
		b.WriteString(e.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// Validate checks an entry built in code against the rules Parse applies, so
// that a valid entry also survives a round trip through String and Parse.
// The error names each bad field; errors.Join combines several.
func (e Entry) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("cronspec: "+format, args...))
	}
	if msg := checkTask(e.Task); msg != "" {
		bad("task identifier %q: %s", e.Task, msg)
	}
	if e.Identifier != e.Task {
		if msg := checkID(e.Identifier); msg != "" {
			bad("id %q: %s", e.Identifier, msg)
		}
	}
	sets := [5]Set{e.Schedule.Minute, e.Schedule.Hour, e.Schedule.DayOfMonth, e.Schedule.Month, e.Schedule.DayOfWeek}
	for i, f := range fields {
		switch {
		case sets[i] == 0:
			bad("schedule %s field is empty", f.name)
		case sets[i]&^f.all() != 0:
			bad("schedule %s field holds values outside %d-%d", f.name, f.lo, f.hi)
		}
	}
	if loc := e.Schedule.Location; loc != nil && loc != time.UTC {
		if _, err := loadZone(loc.String()); err != nil {
			bad("time zone %q cannot be written in a crontab: %v", loc.String(), err)
		}
	}
	o := e.Options
	if msg := checkFill(o.Fill); msg != "" {
		bad("fill %v: %s", o.Fill, msg)
	}
	if o.MaxAttempts != 0 {
		if msg := checkMaxAttempts(o.MaxAttempts); msg != "" {
			bad("max attempts %d: %s", o.MaxAttempts, msg)
		}
	}
	if o.Queue != "" {
		if msg := checkQueue(o.Queue); msg != "" {
			bad("queue %q: %s", o.Queue, msg)
		}
	}
	if msg := checkPriority(o.Priority); msg != "" {
		bad("priority %d: %s", o.Priority, msg)
	}
	if o.JobKey != "" {
		if msg := checkJobKey(o.JobKey); msg != "" {
			bad("job key %q: %s", o.JobKey, msg)
		}
	}
	switch {
	case o.JobKeyMode != "" && o.JobKey == "":
		bad("job key mode %q is set but job key is not", o.JobKeyMode)
	case o.JobKey != "" && o.JobKeyMode == "":
		bad("job key is set but job key mode is not (use %q)", JobKeyModeReplace)
	case o.JobKeyMode != "":
		if msg := checkJobKeyMode(o.JobKeyMode); msg != "" {
			bad("job key mode %q: %s", o.JobKeyMode, msg)
		}
	}
	if e.Payload != nil {
		if msg := checkPayload(e.Payload); msg != "" {
			bad("payload: %s", msg)
		}
	}
	return errors.Join(errs...)
}

// The check functions return "" when the value is fine, or what was expected.

func checkTask(s string) string {
	if !isName(s, true, ":/") || len(s) > MaxTaskLength {
		return fmt.Sprintf("expected a letter or _ followed by letters, digits and _ - : / (at most %d characters)", MaxTaskLength)
	}
	return ""
}

func checkID(s string) string {
	if !isName(s, true, "") {
		return "expected a letter or _ followed by letters, digits, _ and -"
	}
	return ""
}

func checkQueue(s string) string {
	if !isName(s, false, ":") || len(s) > MaxQueueLength {
		return fmt.Sprintf("expected 1-%d letters, digits, _, - and :", MaxQueueLength)
	}
	return ""
}

func checkJobKey(s string) string {
	if n := len([]rune(s)); n < 1 || n > MaxJobKeyLength || strings.ContainsAny(s, "\n\r\u2028\u2029") {
		return fmt.Sprintf("expected 1-%d characters without line breaks", MaxJobKeyLength)
	}
	return ""
}

func checkJobKeyMode(s string) string {
	if s != JobKeyModeReplace && s != JobKeyModePreserveRunAt {
		return fmt.Sprintf("expected %s or %s", JobKeyModeReplace, JobKeyModePreserveRunAt)
	}
	return ""
}

func checkMaxAttempts(n int) string {
	if n < 1 || n > MaxAttemptsLimit {
		return fmt.Sprintf("expected an integer from 1 to %d", MaxAttemptsLimit)
	}
	return ""
}

func checkPriority(n int) string {
	if n < MinPriority || n > MaxPriority {
		return fmt.Sprintf("expected an integer from %d to %d", MinPriority, MaxPriority)
	}
	return ""
}

func checkFill(d time.Duration) string {
	if d < 0 || d%time.Second != 0 {
		return "expected a non-negative whole number of seconds"
	}
	return ""
}

func checkPayload(p json.RawMessage) string {
	if !json.Valid(p) {
		return "not valid JSON"
	}
	if t := bytes.TrimLeft(p, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return "expected a JSON object"
	}
	return ""
}

// isName checks s against [_a-zA-Z][_a-zA-Z0-9-<extra>]* when letterFirst,
// or [_a-zA-Z0-9-<extra>]+ otherwise.
func isName(s string, letterFirst bool, extra string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		letter := c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if letter || (i > 0 || !letterFirst) && (c >= '0' && c <= '9' || c == '-' || strings.IndexByte(extra, c) >= 0) {
			continue
		}
		return false
	}
	return true
}

// fillUnits are the units of a fill period, in the order they must appear.
var fillUnits = [...]struct {
	unit byte
	d    time.Duration
}{
	{'w', 7 * 24 * time.Hour},
	{'d', 24 * time.Hour},
	{'h', time.Hour},
	{'m', time.Minute},
	{'s', time.Second},
}

const fillExpected = "expected a period like 1w2d3h4m5s (units w, d, h, m, s, each at most once and in that order)"

// parseFill reads a fill period such as 1w2d3h4m5s.
func parseFill(s string) (time.Duration, string) {
	if s == "" {
		return 0, fillExpected
	}
	var total time.Duration
	next := 0 // index into fillUnits of the first unit still allowed
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if j == i || j == len(s) {
			return 0, fillExpected
		}
		u := next
		for u < len(fillUnits) && fillUnits[u].unit != s[j] {
			u++
		}
		if u == len(fillUnits) {
			return 0, fillExpected
		}
		n, err := strconv.ParseInt(s[i:j], 10, 64)
		if err != nil || n > int64((1<<63-1)/fillUnits[u].d) || total+time.Duration(n)*fillUnits[u].d < total {
			return 0, "period is too long"
		}
		total += time.Duration(n) * fillUnits[u].d
		next = u + 1
		i = j + 1
	}
	return total, ""
}

// formatFill writes a whole number of seconds as a fill period.
func formatFill(d time.Duration) string {
	var b strings.Builder
	for _, u := range fillUnits {
		if n := d / u.d; n > 0 {
			b.WriteString(strconv.FormatInt(int64(n), 10))
			b.WriteByte(u.unit)
			d -= n * u.d
		}
	}
	if b.Len() == 0 {
		return "0s"
	}
	return b.String()
}

// escapeOption percent-encodes an option value for a query string: every
// byte but letters, digits and - _ . ~ : /.
func escapeOption(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-_.~:/", c) >= 0 {
			b.WriteByte(c)
		} else {
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&0xF])
		}
	}
	return b.String()
}

// unescapeOption decodes a query-string key or value the way Node's
// querystring.parse does: + is a space, %XX a byte, and a % not followed by
// two hex digits stays as it is.
func unescapeOption(s string) string {
	if !strings.ContainsAny(s, "+%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '+':
			b.WriteByte(' ')
		case c == '%' && i+2 < len(s) && isHexDigit(s[i+1]) && isHexDigit(s[i+2]):
			v, _ := strconv.ParseUint(s[i+1:i+3], 16, 8)
			b.WriteByte(byte(v))
			i += 2
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// zones caches loaded time zones by name, so that entries parsed or built
// with the same zone share one *time.Location.
var zones sync.Map // string -> *time.Location

// loadZone loads a time zone by its IANA name. It returns nil for UTC.
func loadZone(name string) (*time.Location, error) {
	if name == "" || name == "Local" {
		return nil, errors.New("expected an IANA time zone name such as Europe/Paris")
	}
	if loc, ok := zones.Load(name); ok {
		return loc.(*time.Location), nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, err
	}
	if loc == time.UTC {
		return nil, nil
	}
	actual, _ := zones.LoadOrStore(name, loc)
	return actual.(*time.Location), nil
}
