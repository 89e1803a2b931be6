package bundriver

import (
	"bytes"
	"database/sql/driver"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// formatTextArray writes a text[] literal with every element quoted.
func formatTextArray(ss []string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, s := range ss {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('"')
		for j := 0; j < len(s); j++ {
			if s[j] == '"' || s[j] == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(s[j])
		}
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

func formatInt64Array(ns []int64) string {
	b := []byte{'{'}
	for i, n := range ns {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, n, 10)
	}
	return string(append(b, '}'))
}

// textArray and int64Array send []string and []int64 through database/sql
// as array literals, which every PostgreSQL driver passes on as text.
type textArray []string

func (a textArray) Value() (driver.Value, error) { return formatTextArray(a), nil }

type int64Array []int64

func (a int64Array) Value() (driver.Value, error) { return formatInt64Array(a), nil }

// parseArray splits a one-dimensional array in PostgreSQL's text output
// format into its elements; null[i] reports an unquoted NULL.
func parseArray(src []byte) (elems []string, null []bool, err error) {
	if len(src) > 0 && src[0] == '[' { // explicit bounds: [0:1]={...}
		i := bytes.IndexByte(src, '=')
		if i < 0 {
			return nil, nil, fmt.Errorf("bundriver: malformed array %q", src)
		}
		src = src[i+1:]
	}
	if len(src) < 2 || src[0] != '{' || src[len(src)-1] != '}' {
		return nil, nil, fmt.Errorf("bundriver: malformed array %q", src)
	}
	body := src[1 : len(src)-1]
	elems, null = []string{}, []bool{}
	if len(body) == 0 {
		return elems, null, nil
	}
	for i := 0; ; {
		switch {
		case i < len(body) && body[i] == '{':
			return nil, nil, errors.New("bundriver: cannot scan a multi-dimensional array into a slice")
		case i < len(body) && body[i] == '"':
			var b []byte
			i++
			for ; i < len(body) && body[i] != '"'; i++ {
				if body[i] == '\\' && i+1 < len(body) {
					i++
				}
				b = append(b, body[i])
			}
			if i >= len(body) {
				return nil, nil, fmt.Errorf("bundriver: malformed array %q", src)
			}
			i++ // the closing quote
			elems, null = append(elems, string(b)), append(null, false)
		default:
			j := i
			for j < len(body) && body[j] != ',' {
				j++
			}
			e := string(body[i:j])
			elems, null = append(elems, e), append(null, strings.EqualFold(e, "NULL"))
			i = j
		}
		if i == len(body) {
			return elems, null, nil
		}
		if body[i] != ',' {
			return nil, nil, fmt.Errorf("bundriver: malformed array %q", src)
		}
		i++
	}
}

func arraySource(src any) ([]byte, error) {
	switch s := src.(type) {
	case []byte:
		return s, nil
	case string:
		return []byte(s), nil
	}
	return nil, fmt.Errorf("bundriver: cannot scan %T into a slice", src)
}

func scanStrings(src any) ([]string, error) {
	b, err := arraySource(src)
	if err != nil {
		return nil, err
	}
	elems, null, err := parseArray(b)
	if err != nil {
		return nil, err
	}
	for i := range null {
		if null[i] {
			return nil, fmt.Errorf("bundriver: cannot scan a NULL array element into a string (element %d)", i+1)
		}
	}
	return elems, nil
}

func scanInt64s(src any) ([]int64, error) {
	b, err := arraySource(src)
	if err != nil {
		return nil, err
	}
	elems, null, err := parseArray(b)
	if err != nil {
		return nil, err
	}
	out := make([]int64, len(elems))
	for i, e := range elems {
		if null[i] {
			return nil, fmt.Errorf("bundriver: cannot scan a NULL array element into an int64 (element %d)", i+1)
		}
		if out[i], err = strconv.ParseInt(e, 10, 64); err != nil {
			return nil, fmt.Errorf("bundriver: array element %d: %w", i+1, err)
		}
	}
	return out, nil
}

// Scanners for the array destinations database/sql cannot fill: a slice,
// or a pointer to one that NULL sets to nil.
type (
	stringsDest     struct{ p *[]string }
	int64sDest      struct{ p *[]int64 }
	nullStringsDest struct{ p **[]string }
	nullInt64sDest  struct{ p **[]int64 }
)

func (d stringsDest) Scan(src any) error {
	if src == nil {
		*d.p = nil
		return nil
	}
	v, err := scanStrings(src)
	if err == nil {
		*d.p = v
	}
	return err
}

func (d int64sDest) Scan(src any) error {
	if src == nil {
		*d.p = nil
		return nil
	}
	v, err := scanInt64s(src)
	if err == nil {
		*d.p = v
	}
	return err
}

func (d nullStringsDest) Scan(src any) error {
	if src == nil {
		*d.p = nil
		return nil
	}
	v, err := scanStrings(src)
	if err == nil {
		*d.p = &v
	}
	return err
}

func (d nullInt64sDest) Scan(src any) error {
	if src == nil {
		*d.p = nil
		return nil
	}
	v, err := scanInt64s(src)
	if err == nil {
		*d.p = &v
	}
	return err
}
