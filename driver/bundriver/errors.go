package bundriver

import (
	"errors"

	"github.com/uptrace/bun/driver/pgdriver"
)

// Error is a server error reported through bun's pgdriver, whose own error
// type (pgdriver.Error) has no SQLState method. It adds that method, which
// core relies on (it tells a concurrent migrator's unique violation from a
// real failure that way), and unwraps to the original error, so
// errors.As(err, &pgdriver.Error{}) keeps working.
type Error struct {
	err error          // the error as pgdriver or database/sql returned it
	pg  pgdriver.Error // the server's error within it
}

func (e *Error) Error() string { return e.err.Error() }

// Unwrap returns the original error.
func (e *Error) Unwrap() error { return e.err }

// SQLState returns the server's SQLSTATE code, e.g. "23505".
func (e *Error) SQLState() string { return e.pg.Field('C') }

// Field returns a field of the server's error message, as pgdriver.Error
// does ('M' is the message, 'D' the detail, 'C' the code, ...).
func (e *Error) Field(k byte) string { return e.pg.Field(k) }

// wrapErr gives server errors a SQLState method; other errors, and errors
// that already have one (pgx's, lib/pq's), are returned as they are.
func wrapErr(err error) error {
	if err == nil {
		return nil
	}
	var s interface{ SQLState() string }
	if errors.As(err, &s) {
		return err
	}
	var pg pgdriver.Error
	if errors.As(err, &pg) {
		return &Error{err: err, pg: pg}
	}
	return err
}
