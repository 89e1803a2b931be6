package cronspec

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Parse reads a crontab: one entry per line, with blank lines and lines whose
// first non-blank character is # skipped. The grammar is in the package
// documentation.
//
// Parse reports every problem it finds, not just the first, as a *ParseError
// listing each with its line and column; it then returns no entries (a
// crontab is used whole or not at all, as in graphile-worker).
func Parse(text string) (Crontab, error) {
	p := &parser{ids: map[string]int{}}
	for i, line := range strings.Split(text, "\n") {
		if p.truncated {
			break
		}
		lp := &lineParser{parser: p, n: i + 1, raw: line}
		lp.parse()
	}
	if len(p.errs) > 0 {
		sort.SliceStable(p.errs, func(i, j int) bool {
			a, b := p.errs[i], p.errs[j]
			return a.Line < b.Line || a.Line == b.Line && a.Column < b.Column
		})
		return nil, &ParseError{Errors: p.errs, Truncated: p.truncated}
	}
	return p.entries, nil
}

// ParseSchedule reads just the five time fields, e.g. "30 4 * * 1-5", into a
// Schedule in UTC. Errors are a *ParseError on line 1.
func ParseSchedule(spec string) (Schedule, error) {
	p := &parser{}
	lp := &lineParser{parser: p, n: 1, raw: spec}
	var s Schedule
	if lp.validUTF8() {
		start, end := trimBounds(spec)
		toks := tokens(spec, start, end)
		if len(toks) != 5 {
			lp.errAt(start, "expected 5 time fields (minute hour day-of-month month day-of-week), found %d", len(toks))
		} else {
			s = lp.schedule(toks)
		}
	}
	if len(p.errs) > 0 {
		return Schedule{}, &ParseError{Errors: p.errs}
	}
	return s, nil
}

type parser struct {
	errs      []LineError
	truncated bool // more than MaxErrors problems
	entries   Crontab
	ids       map[string]int // identifier -> line that uses it
}

// lineParser parses one line; offsets are byte offsets into raw.
type lineParser struct {
	*parser
	n      int
	raw    string
	failed bool
}

func (lp *lineParser) errAt(off int, format string, args ...any) {
	lp.failed = true
	if len(lp.errs) == MaxErrors {
		lp.truncated = true
		return
	}
	lp.errs = append(lp.errs, LineError{
		Line:   lp.n,
		Column: utf8.RuneCountInString(lp.raw[:off]) + 1,
		Msg:    fmt.Sprintf(format, args...),
	})
}

func (lp *lineParser) validUTF8() bool {
	for i := 0; i < len(lp.raw); {
		c, size := utf8.DecodeRuneInString(lp.raw[i:])
		if c == utf8.RuneError && size == 1 {
			lp.errAt(i, "the line is not valid UTF-8")
			return false
		}
		i += size
	}
	return true
}

// trimBounds returns where s starts and ends without surrounding white space.
func trimBounds(s string) (start, end int) {
	start, end = 0, len(s)
	for start < end {
		c, size := utf8.DecodeRuneInString(s[start:])
		if !isSpace(c) {
			break
		}
		start += size
	}
	for end > start {
		c, size := utf8.DecodeLastRuneInString(s[:end])
		if !isSpace(c) {
			break
		}
		end -= size
	}
	return start, end
}

// nextSpace returns the offset of the first white space at or after pos.
func nextSpace(s string, pos, end int) int {
	for pos < end {
		c, size := utf8.DecodeRuneInString(s[pos:])
		if isSpace(c) {
			return pos
		}
		pos += size
	}
	return end
}

// skipSpace returns the offset of the first non-white-space at or after pos.
func skipSpace(s string, pos, end int) int {
	for pos < end {
		c, size := utf8.DecodeRuneInString(s[pos:])
		if !isSpace(c) {
			return pos
		}
		pos += size
	}
	return end
}

type tok struct{ from, to int }

// tokens splits s[start:end] at white space.
func tokens(s string, start, end int) []tok {
	var toks []tok
	for pos := skipSpace(s, start, end); pos < end; {
		to := nextSpace(s, pos, end)
		toks = append(toks, tok{pos, to})
		pos = skipSpace(s, to, end)
	}
	return toks
}

func (lp *lineParser) parse() {
	if !lp.validUTF8() {
		return
	}
	raw := lp.raw
	start, end := trimBounds(raw)
	if start == end || raw[start] == '#' {
		return
	}
	var toks []tok
	pos := start
	for len(toks) < 5 && pos < end {
		to := nextSpace(raw, pos, end)
		toks = append(toks, tok{pos, to})
		pos = skipSpace(raw, to, end)
	}
	if pos >= end {
		lp.errAt(end, "expected 5 time fields (minute hour day-of-month month day-of-week) and a task identifier, found only %d field(s)", len(toks))
		return
	}
	sched := lp.schedule(toks)

	// The task identifier.
	taskTo := nextSpace(raw, pos, end)
	task := raw[pos:taskTo]
	taskOK := true
	if msg := checkTask(task); msg != "" {
		taskOK = false
		if task[0] == '?' || task[0] == '{' {
			lp.errAt(pos, "missing task identifier before %q", excerpt(task))
		} else {
			lp.errAt(pos, "task identifier %q: %s", excerpt(task), msg)
		}
	}
	id, idOff, idOK := task, pos, taskOK
	pos = skipSpace(raw, taskTo, end)

	// ?options
	var opts Options
	if pos < end && raw[pos] == '?' {
		optTo := nextSpace(raw, pos, end)
		if optTo == pos+1 {
			lp.errAt(pos, "empty options after ?; expected key=value pairs joined by &")
		} else {
			o := lp.options(raw[pos+1:optTo], pos+1, &sched)
			opts = o.Options
			if o.id != "" {
				id, idOff, idOK = o.id, o.idOff, true
			} else if o.idBad {
				idOK = false
			}
		}
		pos = skipSpace(raw, optTo, end)
	}

	// {payload}
	var payload json.RawMessage
	if pos < end {
		if raw[pos] == '{' {
			out, err := parseJSON5(raw[pos:end])
			if err != nil {
				lp.errAt(pos+err.off, "payload: %s", err.msg)
			}
			payload = out
		} else {
			lp.errAt(pos, "unexpected %q after the task identifier; expected ?options or a JSON5 object payload {...}",
				excerpt(raw[pos:nextSpace(raw, pos, end)]))
		}
	}

	if idOK {
		if first, dup := lp.ids[id]; dup {
			lp.errAt(idOff, "duplicate id %q: line %d already uses it; give one of them a unique ?id=", id, first)
		} else {
			lp.ids[id] = lp.n
		}
	}
	if lp.failed {
		return
	}
	lp.entries = append(lp.entries, Entry{
		Identifier: id,
		Task:       task,
		Schedule:   sched,
		Options:    opts,
		Payload:    payload,
		Line:       lp.n,
	})
}

// excerpt shortens text quoted in an error message.
func excerpt(s string) string {
	if utf8.RuneCountInString(s) > 24 {
		return string([]rune(s)[:24]) + "..."
	}
	return s
}

func (lp *lineParser) schedule(toks []tok) Schedule {
	var sets [5]Set
	for i, f := range fields {
		sets[i] = lp.field(f, toks[i].from, toks[i].to)
	}
	return Schedule{Minute: sets[0], Hour: sets[1], DayOfMonth: sets[2], Month: sets[3], DayOfWeek: sets[4]}
}

// field parses one time field: a comma list of n, a-b, * and */n.
func (lp *lineParser) field(f field, from, to int) Set {
	var s Set
	off := from
	for _, part := range strings.Split(lp.raw[from:to], ",") {
		s |= lp.part(f, part, off)
		off += len(part) + 1
	}
	return s
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// digitsValue converts a string of digits, saturating at a large value.
func digitsValue(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 1 << 30
	}
	return n
}

func (lp *lineParser) part(f field, part string, off int) Set {
	switch {
	case part == "":
		lp.errAt(off, "%s: empty value in a comma list", f.name)
	case part == "*":
		return f.all()
	case strings.HasPrefix(part, "*/") && isDigits(part[2:]):
		n := digitsValue(part[2:])
		if n < 1 {
			lp.errAt(off+2, "%s step %q: expected a step of at least 1", f.name, part)
			return 0
		}
		return step(f.lo, f.hi, min(n, f.hi-f.lo+1))
	case isDigits(part):
		if v, ok := lp.value(f, part, off); ok {
			return 1 << uint(v)
		}
	default:
		a, b, isRange := strings.Cut(part, "-")
		if !isRange || !isDigits(a) || !isDigits(b) {
			lp.errAt(off, "%s: unsupported syntax %q; expected a number, a range a-b, * or */n (names and stepped ranges such as 1-10/2 are not supported)",
				f.name, excerpt(part))
			return 0
		}
		_, aok := lp.value(f, a, off)
		_, bok := lp.value(f, b, off+len(a)+1)
		if !aok || !bok {
			return 0
		}
		lo, hi := digitsValue(a), digitsValue(b)
		if hi <= lo {
			lp.errAt(off, "%s range %q: expected the end to be greater than the start", f.name, part)
			return 0
		}
		var s Set
		for v := lo; v <= hi; v++ {
			s |= 1 << uint(f.wrapValue(v))
		}
		return s
	}
	return 0
}

// wrapValue maps 7 to 0 (Sunday) for the day of week.
func (f field) wrapValue(v int) int {
	if f.wrap && v == f.hi+1 {
		return f.lo
	}
	return v
}

// value checks one number of a field.
func (lp *lineParser) value(f field, digits string, off int) (int, bool) {
	v := f.wrapValue(digitsValue(digits))
	if v < f.lo || v > f.hi {
		lp.errAt(off, "%s %s is out of range %s", f.name, excerpt(digits), f.rangeText())
		return 0, false
	}
	return v, true
}

// lineOptions is what the ?options of a line set.
type lineOptions struct {
	Options
	id    string // the id option, if given and valid
	idOff int
	idBad bool // the id option was given but is invalid
}

const knownOptions = "id, fill, max, queue, priority, jobKey, jobKeyMode, tz"

// options parses the query string after ? (text starts at byte off).
func (lp *lineParser) options(text string, off int, sched *Schedule) lineOptions {
	var o lineOptions
	seen := map[string]bool{}
	modeOff, keyGiven := -1, false
	segOff := off
	for _, seg := range strings.Split(text, "&") {
		at := segOff
		segOff += len(seg) + 1
		if seg == "" {
			continue // as in Node's querystring: a=1&&b=2
		}
		rawKey, rawVal, _ := strings.Cut(seg, "=")
		valOff := at + len(rawKey) + 1
		if valOff > at+len(seg) {
			valOff = at + len(seg)
		}
		key, val := unescapeOption(rawKey), unescapeOption(rawVal)
		if !utf8.ValidString(key) || !utf8.ValidString(val) {
			lp.errAt(at, "option %q: %%-escapes do not decode to valid UTF-8", excerpt(seg))
			continue
		}
		if seen[key] {
			lp.errAt(at, "option %q given more than once", excerpt(key))
			continue
		}
		seen[key] = true
		bad := func(msg string) { lp.errAt(valOff, "%s %q: %s", key, excerpt(val), msg) }
		switch key {
		case "id":
			if msg := checkID(val); msg != "" {
				bad(msg)
				o.idBad = true
			} else {
				o.id, o.idOff = val, valOff
			}
		case "fill":
			d, msg := parseFill(val)
			if msg != "" {
				bad(msg)
			}
			o.Fill = d
		case "max":
			n, err := strconv.Atoi(val)
			if msg := checkMaxAttempts(n); !isDigits(val) || err != nil || msg != "" {
				bad(checkMaxAttempts(0))
			} else {
				o.MaxAttempts = n
			}
		case "queue":
			if msg := checkQueue(val); msg != "" {
				bad(msg)
			} else {
				o.Queue = val
			}
		case "priority":
			n, err := strconv.Atoi(val)
			if msg := checkPriority(n); !isDigits(strings.TrimPrefix(val, "-")) || err != nil || msg != "" {
				bad(checkPriority(MinPriority - 1))
			} else {
				o.Priority = n
			}
		case "jobKey":
			keyGiven = true
			if msg := checkJobKey(val); msg != "" {
				bad(msg)
			} else {
				o.JobKey = val
			}
		case "jobKeyMode":
			modeOff = at
			if msg := checkJobKeyMode(val); msg != "" {
				bad(msg)
			} else {
				o.JobKeyMode = val
			}
		case "tz":
			loc, err := loadZone(val)
			if err != nil {
				bad(err.Error())
			} else {
				sched.Location = loc
			}
		default:
			lp.errAt(at, "unknown option %q; expected one of %s", excerpt(key), knownOptions)
		}
	}
	if modeOff >= 0 && !keyGiven {
		lp.errAt(modeOff, "jobKeyMode is set but jobKey is not")
	}
	if o.JobKey != "" && o.JobKeyMode == "" {
		o.JobKeyMode = JobKeyModeReplace
	}
	return o
}
