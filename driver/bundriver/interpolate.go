package bundriver

import (
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// interpolate replaces the $N parameters of a statement with SQL literals
// of args, for bun's pgdriver, which sends every statement with the simple
// query protocol and substitutes arguments itself with a lexer that does
// not know quoted identifiers, dollar quotes or comments. Statements are
// therefore always handed to pgdriver without arguments.
//
// The lexer follows PostgreSQL's: a $N is a parameter unless it is inside a
// string ('...', E'...'), a quoted identifier ("..."), dollar-quoted text
// ($tag$...$tag$), a comment (-- or nested /* */), or part of an
// identifier (a$1). A statement without arguments is returned unchanged.
func interpolate(query string, args []any) (string, error) {
	if len(args) == 0 {
		return query, nil
	}
	lits := make([]string, len(args))
	for i, a := range args {
		lit, err := literal(a)
		if err != nil {
			return "", fmt.Errorf("bundriver: argument $%d: %w", i+1, err)
		}
		lits[i] = lit
	}
	var b strings.Builder
	b.Grow(len(query) + 16*len(args))
	n := len(query)
	last := 0 // query[last:i] is still to be copied
	for i := 0; i < n; {
		c := query[i]
		switch {
		case c == '\'':
			escape := i > 0 && (query[i-1] == 'E' || query[i-1] == 'e') && (i < 2 || !identChar(query[i-2]))
			i = skipQuoted(query, i+1, '\'', escape)
		case c == '"':
			i = skipQuoted(query, i+1, '"', false)
		case c == '-' && i+1 < n && query[i+1] == '-':
			if j := strings.IndexByte(query[i:], '\n'); j >= 0 {
				i += j + 1
			} else {
				i = n
			}
		case c == '/' && i+1 < n && query[i+1] == '*':
			i = skipBlockComment(query, i+2)
		case identChar(c):
			// An identifier or keyword, possibly containing $ (a$1).
			for i < n && (identChar(query[i]) || query[i] == '$') {
				i++
			}
		case c == '$':
			j := i + 1
			for j < n && query[j] >= '0' && query[j] <= '9' {
				j++
			}
			if j > i+1 {
				num, err := strconv.Atoi(query[i+1 : j])
				if err != nil || num < 1 || num > len(args) {
					return "", fmt.Errorf("bundriver: the statement uses $%s but has %d arguments", query[i+1:j], len(args))
				}
				b.WriteString(query[last:i])
				b.WriteString(lits[num-1])
				last, i = j, j
				continue
			}
			if end, ok := dollarQuoteEnd(query, i); ok {
				i = end
			} else {
				i++
			}
		default:
			i++
		}
	}
	b.WriteString(query[last:])
	return b.String(), nil
}

// identChar reports whether c may continue an identifier (bytes of
// multi-byte UTF-8 characters included).
func identChar(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80
}

// skipQuoted returns the index after the quote closing a string or quoted
// identifier that starts at i; a doubled quote stands for itself, and in an
// escape string a backslash escapes the next byte.
func skipQuoted(s string, i int, quote byte, backslash bool) int {
	for i < len(s) {
		switch s[i] {
		case '\\':
			if backslash {
				i += 2
				continue
			}
		case quote:
			if i+1 < len(s) && s[i+1] == quote {
				i += 2
				continue
			}
			return i + 1
		}
		i++
	}
	return len(s)
}

// skipBlockComment returns the index after the (nested) block comment whose
// body starts at i.
func skipBlockComment(s string, i int) int {
	depth := 1
	for i < len(s) {
		switch {
		case strings.HasPrefix(s[i:], "/*"):
			depth++
			i += 2
		case strings.HasPrefix(s[i:], "*/"):
			depth--
			i += 2
			if depth == 0 {
				return i
			}
		default:
			i++
		}
	}
	return len(s)
}

// dollarQuoteEnd: if a dollar quote ($$ or $tag$) opens at i, it returns the
// index after its closing delimiter.
func dollarQuoteEnd(s string, i int) (int, bool) {
	j := i + 1
	if j < len(s) && identChar(s[j]) && !(s[j] >= '0' && s[j] <= '9') {
		for j < len(s) && identChar(s[j]) {
			j++
		}
	}
	if j >= len(s) || s[j] != '$' {
		return 0, false
	}
	tag := s[i : j+1]
	k := strings.Index(s[j+1:], tag)
	if k < 0 {
		return len(s), true
	}
	return j + 1 + k + len(tag), true
}

var errNUL = errors.New("a string argument contains a NUL byte, which PostgreSQL text cannot hold")

// literal writes a value as an SQL literal that means the same thing as a
// bound parameter of it would. Integers are plain numbers (typed by the
// server, like an untyped parameter), floats and the other types carry a
// cast where their text alone would be ambiguous.
func literal(v any) (string, error) {
	switch v := v.(type) {
	case nil:
		return "NULL", nil
	case string:
		return quoteString(v)
	case json.RawMessage:
		if v == nil {
			return "NULL", nil
		}
		return quoteString(string(v))
	case []byte:
		if v == nil {
			return "NULL", nil
		}
		return `'\x` + fmt.Sprintf("%x", v) + `'::bytea`, nil
	case bool:
		if v {
			return "true", nil
		}
		return "false", nil
	case int64:
		return intLiteral(v), nil
	case int32:
		return intLiteral(int64(v)), nil
	case int16:
		return intLiteral(int64(v)), nil
	case int8:
		return intLiteral(int64(v)), nil
	case int:
		return intLiteral(int64(v)), nil
	case uint8:
		return intLiteral(int64(v)), nil
	case uint16:
		return intLiteral(int64(v)), nil
	case uint32:
		return intLiteral(int64(v)), nil
	case uint64:
		return strconv.FormatUint(v, 10), nil
	case float64:
		return floatLiteral(v), nil
	case float32:
		return floatLiteral(float64(v)), nil
	case time.Time:
		return timeLiteral(v), nil
	case []string:
		if v == nil {
			return "NULL", nil
		}
		s, err := quoteString(formatTextArray(v))
		return s + "::text[]", err
	case []int64:
		if v == nil {
			return "NULL", nil
		}
		return "'" + formatInt64Array(v) + "'::int8[]", nil
	case driver.Valuer:
		dv, err := v.Value()
		if err != nil {
			return "", err
		}
		if _, again := dv.(driver.Valuer); again {
			return "", fmt.Errorf("%T.Value returned another driver.Valuer", v)
		}
		return literal(dv)
	}
	return "", fmt.Errorf("unsupported type %T", v)
}

// quoteString writes an escape string constant, which reads the same
// whatever standard_conforming_strings says.
func quoteString(s string) (string, error) {
	if strings.IndexByte(s, 0) >= 0 {
		return "", errNUL
	}
	var b strings.Builder
	b.Grow(len(s) + 3)
	b.WriteString("E'")
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\'':
			b.WriteString("''")
		case '\\':
			b.WriteString(`\\`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('\'')
	return b.String(), nil
}

// intLiteral parenthesises negative numbers, so that "x-$1" cannot become a
// comment ("x--1").
func intLiteral(n int64) string {
	switch {
	case n == math.MinInt64:
		return "(-9223372036854775807-1)"
	case n < 0:
		return "(" + strconv.FormatInt(n, 10) + ")"
	}
	return strconv.FormatInt(n, 10)
}

func floatLiteral(f float64) string {
	switch {
	case math.IsNaN(f):
		return "'NaN'::float8"
	case math.IsInf(f, 1):
		return "'Infinity'::float8"
	case math.IsInf(f, -1):
		return "'-Infinity'::float8"
	}
	return "'" + strconv.FormatFloat(f, 'g', -1, 64) + "'::float8"
}

// timeLiteral writes the instant in UTC with microseconds (PostgreSQL's
// precision; finer digits are truncated, as pgx does).
func timeLiteral(t time.Time) string {
	t = t.UTC()
	bc := ""
	if t.Year() <= 0 {
		// Year 0 is 1 BC.
		t = t.AddDate(1-2*t.Year(), 0, 0)
		bc = " BC"
	}
	return "'" + t.Format("2006-01-02 15:04:05.999999") + "+00" + bc + "'::timestamptz"
}
