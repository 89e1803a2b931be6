package cronspec

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// This file is a JSON5 reader (https://spec.json5.org) that turns a JSON5
// text into the JSON text graphile-worker would store for it, i.e. what
// JSON.stringify(JSON5.parse(text)) gives in Node:
//
//   - numbers become IEEE doubles written the way JavaScript writes them
//     (0x1F -> 31, 1.50 -> 1.5, 1e21 -> 1e+21, -0 -> 0);
//   - strings are re-escaped the way JSON.stringify does it;
//   - in objects, a repeated key keeps its first position and its last value,
//     and keys that are array indexes ("0", "7", "42") come first in
//     increasing order, then the other keys in the order written.
//
// Unlike Node it rejects Infinity and NaN (JSON.stringify would silently turn
// them into null) and lone UTF-16 surrogates (PostgreSQL's json type refuses
// them).

// maxJSONDepth bounds the nesting of arrays and objects.
const maxJSONDepth = 500

// json5Error is a syntax error at a byte offset of the input.
type json5Error struct {
	off int
	msg string
}

type json5Reader struct {
	s     string
	pos   int
	depth int
}

// parseJSON5 reads one JSON5 value that must fill all of s, except for
// trailing whitespace (a payload in a crontab line must end with its closing
// brace, as graphile-worker requires). It returns the value as JSON.
func parseJSON5(s string) ([]byte, *json5Error) {
	r := &json5Reader{s: s}
	if err := r.skipSpace(); err != nil {
		return nil, err
	}
	out, err := r.value(nil)
	if err != nil {
		return nil, err
	}
	for r.pos < len(r.s) {
		c, size := utf8.DecodeRuneInString(r.s[r.pos:])
		if !isSpace(c) {
			return nil, r.errf("unexpected %s after the end of the payload", describe(c))
		}
		r.pos += size
	}
	return out, nil
}

func (r *json5Reader) errf(format string, args ...any) *json5Error {
	return &json5Error{off: r.pos, msg: fmt.Sprintf(format, args...)}
}

// describe names a character for an error message.
func describe(c rune) string {
	if c < 0 {
		return "end of payload"
	}
	return strconv.QuoteRune(c)
}

func (r *json5Reader) peek() rune {
	if r.pos >= len(r.s) {
		return -1
	}
	c, _ := utf8.DecodeRuneInString(r.s[r.pos:])
	return c
}

func (r *json5Reader) unexpected(want string) *json5Error {
	return r.errf("unexpected %s; expected %s", describe(r.peek()), want)
}

// isSpace reports whether c is JavaScript/JSON5 white space or a line
// terminator (what the \s of a JavaScript regular expression matches).
func isSpace(c rune) bool {
	switch c {
	case '\t', '\n', '\v', '\f', '\r', ' ', 0xA0, 0x2028, 0x2029, 0xFEFF:
		return true
	}
	return c > 0xFF && unicode.Is(unicode.Zs, c)
}

func isLineTerminator(c rune) bool {
	return c == '\n' || c == '\r' || c == 0x2028 || c == 0x2029
}

// skipSpace skips white space and comments.
func (r *json5Reader) skipSpace() *json5Error {
	for r.pos < len(r.s) {
		c, size := utf8.DecodeRuneInString(r.s[r.pos:])
		switch {
		case isSpace(c):
			r.pos += size
		case strings.HasPrefix(r.s[r.pos:], "//"):
			r.pos += 2
			for r.pos < len(r.s) {
				c, size := utf8.DecodeRuneInString(r.s[r.pos:])
				if isLineTerminator(c) {
					break
				}
				r.pos += size
			}
		case strings.HasPrefix(r.s[r.pos:], "/*"):
			end := strings.Index(r.s[r.pos+2:], "*/")
			if end < 0 {
				return r.errf("unterminated /* comment")
			}
			r.pos += 2 + end + 2
		default:
			return nil
		}
	}
	return nil
}

// value reads one value and appends its JSON form to out.
func (r *json5Reader) value(out []byte) ([]byte, *json5Error) {
	c := r.peek()
	switch {
	case c == '{':
		return r.object(out)
	case c == '[':
		return r.array(out)
	case c == '"' || c == '\'':
		s, err := r.str()
		if err != nil {
			return nil, err
		}
		return appendJSONString(out, s), nil
	case c == '-' || c == '+' || c == '.' || c >= '0' && c <= '9' ||
		strings.HasPrefix(r.s[r.pos:], "Infinity") || strings.HasPrefix(r.s[r.pos:], "NaN"):
		return r.number(out)
	case c == 't' || c == 'f' || c == 'n':
		for _, lit := range [...]string{"true", "false", "null"} {
			if strings.HasPrefix(r.s[r.pos:], lit) {
				r.pos += len(lit)
				return append(out, lit...), nil
			}
		}
	}
	return nil, r.unexpected("a value")
}

func (r *json5Reader) enter() *json5Error {
	r.depth++
	if r.depth > maxJSONDepth {
		return r.errf("payload nested more than %d levels deep", maxJSONDepth)
	}
	return nil
}

func (r *json5Reader) array(out []byte) ([]byte, *json5Error) {
	if err := r.enter(); err != nil {
		return nil, err
	}
	r.pos++ // [
	out = append(out, '[')
	first := true
	for {
		if err := r.skipSpace(); err != nil {
			return nil, err
		}
		if r.peek() == ']' {
			r.pos++
			r.depth--
			return append(out, ']'), nil
		}
		if !first {
			out = append(out, ',')
		}
		first = false
		var err *json5Error
		if out, err = r.value(out); err != nil {
			return nil, err
		}
		if err := r.skipSpace(); err != nil {
			return nil, err
		}
		switch r.peek() {
		case ',':
			r.pos++
		case ']':
		default:
			return nil, r.unexpected("',' or ']'")
		}
	}
}

func (r *json5Reader) object(out []byte) ([]byte, *json5Error) {
	if err := r.enter(); err != nil {
		return nil, err
	}
	r.pos++ // {
	var keys []string
	vals := map[string][]byte{}
	for {
		if err := r.skipSpace(); err != nil {
			return nil, err
		}
		if r.peek() == '}' {
			r.pos++
			break
		}
		var key string
		var err *json5Error
		if c := r.peek(); c == '"' || c == '\'' {
			key, err = r.str()
		} else {
			key, err = r.identifier()
		}
		if err != nil {
			return nil, err
		}
		if err := r.skipSpace(); err != nil {
			return nil, err
		}
		if r.peek() != ':' {
			return nil, r.unexpected("':' after the key")
		}
		r.pos++
		if err := r.skipSpace(); err != nil {
			return nil, err
		}
		v, err := r.value(nil)
		if err != nil {
			return nil, err
		}
		if _, seen := vals[key]; !seen {
			keys = append(keys, key)
		}
		vals[key] = v
		if err := r.skipSpace(); err != nil {
			return nil, err
		}
		switch r.peek() {
		case ',':
			r.pos++
		case '}':
		default:
			return nil, r.unexpected("',' or '}'")
		}
	}
	r.depth--
	// JavaScript orders array-index keys first, numerically.
	sort.SliceStable(keys, func(i, j int) bool {
		a, aok := arrayIndex(keys[i])
		b, bok := arrayIndex(keys[j])
		if aok && bok {
			return a < b
		}
		return aok && !bok
	})
	out = append(out, '{')
	for i, k := range keys {
		if i > 0 {
			out = append(out, ',')
		}
		out = appendJSONString(out, k)
		out = append(out, ':')
		out = append(out, vals[k]...)
	}
	return append(out, '}'), nil
}

// arrayIndex reports whether k is a JavaScript array index: the canonical
// decimal form of an integer from 0 to 2^32-2.
func arrayIndex(k string) (uint64, bool) {
	if k == "" || len(k) > 10 || (len(k) > 1 && k[0] == '0') {
		return 0, false
	}
	n, err := strconv.ParseUint(k, 10, 64)
	if err != nil || n > math.MaxUint32-1 {
		return 0, false
	}
	return n, true
}

// identifier reads an unquoted object key (an ECMAScript IdentifierName).
func (r *json5Reader) identifier() (string, *json5Error) {
	var b strings.Builder
	for {
		start := r.pos
		c, size := utf8.DecodeRuneInString(r.s[r.pos:])
		if r.pos >= len(r.s) {
			c = -1
		}
		escaped := false
		if c == '\\' {
			if !strings.HasPrefix(r.s[r.pos:], `\u`) {
				return "", r.errf(`invalid escape in key; expected \uXXXX`)
			}
			r.pos += 2
			v, err := r.hex(4)
			if err != nil {
				return "", err
			}
			c, size, escaped = rune(v), 0, true
		}
		ok := isIDStart(c) || b.Len() > 0 && isIDPart(c)
		if !ok {
			r.pos = start
			if b.Len() == 0 {
				return "", r.unexpected("a key (a name or a quoted string)")
			}
			if escaped {
				return "", r.errf("escape in key is not a name character")
			}
			return b.String(), nil
		}
		r.pos += size
		b.WriteRune(c)
	}
}

func isIDStart(c rune) bool {
	return c == '$' || c == '_' || unicode.In(c, unicode.Lu, unicode.Ll, unicode.Lt, unicode.Lm, unicode.Lo, unicode.Nl)
}

func isIDPart(c rune) bool {
	return isIDStart(c) || c == 0x200C || c == 0x200D ||
		unicode.In(c, unicode.Mn, unicode.Mc, unicode.Nd, unicode.Pc)
}

// hex reads n hexadecimal digits.
func (r *json5Reader) hex(n int) (uint64, *json5Error) {
	if r.pos+n > len(r.s) {
		r.pos = len(r.s)
		return 0, r.errf("unexpected end of payload in escape; expected %d hex digits", n)
	}
	for i := 0; i < n; i++ {
		if !isHexDigit(r.s[r.pos+i]) {
			r.pos += i
			return 0, r.unexpected("a hex digit")
		}
	}
	v, _ := strconv.ParseUint(r.s[r.pos:r.pos+n], 16, 32)
	r.pos += n
	return v, nil
}

func isHexDigit(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// str reads a single- or double-quoted string.
func (r *json5Reader) str() (string, *json5Error) {
	quote := r.s[r.pos]
	r.pos++
	var units []uint16 // pending UTF-16 code units from \u escapes
	var b strings.Builder
	flush := func() *json5Error {
		if len(units) == 0 {
			return nil
		}
		for i := 0; i < len(units); i++ {
			u := rune(units[i])
			switch {
			case utf16.IsSurrogate(u) && u < 0xDC00 && i+1 < len(units) && units[i+1] >= 0xDC00 && units[i+1] <= 0xDFFF:
				b.WriteRune(utf16.DecodeRune(u, rune(units[i+1])))
				i++
			case utf16.IsSurrogate(u):
				return r.errf(`lone UTF-16 surrogate \u%04x in string; JSON cannot store it`, u)
			default:
				b.WriteRune(u)
			}
		}
		units = units[:0]
		return nil
	}
	for {
		if r.pos >= len(r.s) {
			return "", r.errf("unterminated string")
		}
		c, size := utf8.DecodeRuneInString(r.s[r.pos:])
		if c == '\\' && strings.HasPrefix(r.s[r.pos:], `\u`) {
			r.pos += 2
			v, err := r.hex(4)
			if err != nil {
				return "", err
			}
			units = append(units, uint16(v))
			continue
		}
		if err := flush(); err != nil {
			return "", err
		}
		switch {
		case c == rune(quote):
			r.pos++
			return b.String(), nil
		case c == '\n' || c == '\r':
			return "", r.errf("line break in string; write it as \\n")
		case c == '\\':
			r.pos++
			if err := r.escape(&b); err != nil {
				return "", err
			}
		default:
			b.WriteRune(c)
			r.pos += size
		}
	}
}

// escape reads what follows a backslash in a string (other than \u).
func (r *json5Reader) escape(b *strings.Builder) *json5Error {
	if r.pos >= len(r.s) {
		return r.errf("unterminated string")
	}
	c, size := utf8.DecodeRuneInString(r.s[r.pos:])
	r.pos += size
	switch c {
	case 'b':
		b.WriteByte('\b')
	case 'f':
		b.WriteByte('\f')
	case 'n':
		b.WriteByte('\n')
	case 'r':
		b.WriteByte('\r')
	case 't':
		b.WriteByte('\t')
	case 'v':
		b.WriteByte('\v')
	case '0':
		if r.pos < len(r.s) && r.s[r.pos] >= '0' && r.s[r.pos] <= '9' {
			r.pos -= 2
			return r.errf(`invalid escape \0 followed by a digit`)
		}
		b.WriteByte(0)
	case 'x':
		v, err := r.hex(2)
		if err != nil {
			return err
		}
		b.WriteRune(rune(v))
	case '\r':
		if r.pos < len(r.s) && r.s[r.pos] == '\n' {
			r.pos++
		}
	case '\n', 0x2028, 0x2029:
		// line continuation: nothing
	case '1', '2', '3', '4', '5', '6', '7', '8', '9':
		r.pos -= size + 1
		return r.errf(`invalid escape \%c`, c)
	default:
		b.WriteRune(c)
	}
	return nil
}

// number reads a JSON5 number and writes it as JavaScript would.
func (r *json5Reader) number(out []byte) ([]byte, *json5Error) {
	start := r.pos
	neg := false
	if c := r.s[r.pos]; c == '+' || c == '-' {
		neg = c == '-'
		r.pos++
	}
	rest := r.s[r.pos:]
	if strings.HasPrefix(rest, "Infinity") || strings.HasPrefix(rest, "NaN") {
		return nil, r.errf("Infinity and NaN cannot be stored in JSON")
	}
	var f float64
	if strings.HasPrefix(rest, "0x") || strings.HasPrefix(rest, "0X") {
		r.pos += 2
		digits := r.pos
		for r.pos < len(r.s) && isHexDigit(r.s[r.pos]) {
			r.pos++
		}
		if r.pos == digits {
			return nil, r.unexpected("a hex digit")
		}
		v, err := strconv.ParseFloat("0x"+r.s[digits:r.pos]+"p0", 64)
		if err != nil {
			text := r.s[start:r.pos]
			r.pos = start
			return nil, r.errf("number %s is too large for a double", text)
		}
		f = v
	} else {
		digits := r.pos
		intDigits := r.digits()
		if intDigits > 1 && r.s[digits] == '0' {
			r.pos = digits + 1
			return nil, r.errf("number has a leading zero")
		}
		fracDigits := 0
		if r.pos < len(r.s) && r.s[r.pos] == '.' {
			r.pos++
			fracDigits = r.digits()
		}
		if intDigits == 0 && fracDigits == 0 {
			return nil, r.unexpected("a digit")
		}
		if r.pos < len(r.s) && (r.s[r.pos] == 'e' || r.s[r.pos] == 'E') {
			r.pos++
			if r.pos < len(r.s) && (r.s[r.pos] == '+' || r.s[r.pos] == '-') {
				r.pos++
			}
			if r.digits() == 0 {
				return nil, r.unexpected("a digit in the exponent")
			}
		}
		v, err := strconv.ParseFloat(r.s[digits:r.pos], 64)
		if err != nil || math.IsInf(v, 0) {
			// Only a range error is possible here: the syntax was checked.
			text := r.s[start:r.pos]
			r.pos = start
			return nil, r.errf("number %s is too large for a double", text)
		}
		f = v
	}
	if neg {
		f = -f
	}
	return append(out, formatJSNumber(f)...), nil
}

// digits skips decimal digits and returns how many there were.
func (r *json5Reader) digits() int {
	n := 0
	for r.pos < len(r.s) && r.s[r.pos] >= '0' && r.s[r.pos] <= '9' {
		r.pos++
		n++
	}
	return n
}

// formatJSNumber writes a finite double the way JavaScript's
// Number.prototype.toString (and so JSON.stringify) does.
func formatJSNumber(f float64) string {
	if f == 0 {
		return "0" // also -0
	}
	if f < 0 {
		return "-" + formatJSNumber(-f)
	}
	// Shortest digits that round-trip, as d.ddde±x.
	e := strconv.FormatFloat(f, 'e', -1, 64)
	mant, exp, _ := strings.Cut(e, "e")
	digits := strings.Replace(mant, ".", "", 1)
	x, _ := strconv.Atoi(exp)
	k, n := len(digits), x+1 // value = 0.digits × 10^n
	switch {
	case k <= n && n <= 21:
		return digits + strings.Repeat("0", n-k)
	case 0 < n && n <= 21:
		return digits[:n] + "." + digits[n:]
	case -6 < n && n <= 0:
		return "0." + strings.Repeat("0", -n) + digits
	}
	sign := "+"
	if n-1 < 0 {
		sign = "-"
	}
	ex := strconv.Itoa(max(n-1, 1-n))
	if k == 1 {
		return digits + "e" + sign + ex
	}
	return digits[:1] + "." + digits[1:] + "e" + sign + ex
}

// appendJSONString writes s as a JSON string, escaped as JSON.stringify
// does: only the quote, the backslash and control characters.
func appendJSONString(out []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	out = append(out, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '"':
			out = append(out, '\\', '"')
		case '\\':
			out = append(out, '\\', '\\')
		case '\b':
			out = append(out, '\\', 'b')
		case '\f':
			out = append(out, '\\', 'f')
		case '\n':
			out = append(out, '\\', 'n')
		case '\r':
			out = append(out, '\\', 'r')
		case '\t':
			out = append(out, '\\', 't')
		default:
			if c < 0x20 {
				out = append(out, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			} else {
				out = append(out, c)
			}
		}
	}
	return append(out, '"')
}
