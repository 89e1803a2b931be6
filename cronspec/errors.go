package cronspec

import (
	"fmt"
	"strings"
)

// LineError is one problem found in a crontab: where it is and what was
// expected there.
type LineError struct {
	// Line is the 1-based line number in the crontab text.
	Line int
	// Column is the 1-based column, counted in characters (runes) of the
	// original line, including any leading whitespace.
	Column int
	// Msg says what is wrong and what was expected.
	Msg string
}

// Error returns "line L, column C: msg".
func (e LineError) Error() string {
	return fmt.Sprintf("line %d, column %d: %s", e.Line, e.Column, e.Msg)
}

// ParseError is returned by Parse and ParseSchedule. It holds every problem
// found in the text, in line and column order, not just the first one.
//
// Use errors.As to get it, or to get the first LineError:
//
//	var perr *cronspec.ParseError
//	if errors.As(err, &perr) {
//		for _, le := range perr.Errors { ... }
//	}
type ParseError struct {
	Errors []LineError
	// Truncated reports that there were more than MaxErrors problems and
	// parsing stopped at the last one listed.
	Truncated bool
}

// MaxErrors is the most problems a ParseError lists.
const MaxErrors = 100

// Error lists each LineError on its own line.
func (e *ParseError) Error() string {
	var b strings.Builder
	for i, le := range e.Errors {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(le.Error())
	}
	if e.Truncated {
		fmt.Fprintf(&b, "\ntoo many errors: only the first %d are listed", len(e.Errors))
	}
	return b.String()
}

// Unwrap returns the individual LineErrors, so that errors.As(err, &le),
// with le a LineError, finds the first one.
func (e *ParseError) Unwrap() []error {
	errs := make([]error, len(e.Errors))
	for i, le := range e.Errors {
		errs[i] = le
	}
	return errs
}
