package core

import (
	"errors"
	"fmt"
)

// ValidationError reports bad input: an option, a job spec field or an
// argument. Field names the offending input in Go terms: a struct field
// ("JobSpec.QueueName", "WorkerOptions.Concurrency"), an element of a slice
// argument ("jobs[3].Spec.JobKey") or a parameter ("identifier").
type ValidationError struct {
	Field  string // e.g. "identifier", "JobSpec.JobKey", "WorkerOptions.Concurrency"
	Value  any    // the offending value, when it helps to show it
	Reason string // what is wrong and, where useful, what is allowed
}

func (e *ValidationError) Error() string {
	if e.Value == nil {
		return fmt.Sprintf("gworker: invalid %s: %s", e.Field, e.Reason)
	}
	s := fmt.Sprint(e.Value)
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return fmt.Sprintf("gworker: invalid %s %q: %s", e.Field, s, e.Reason)
}

// Is reports whether target is ErrInvalidInput, so callers can test for any
// validation failure with errors.Is.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalidInput }

// ErrInvalidInput matches every *ValidationError through errors.Is.
var ErrInvalidInput = errors.New("gworker: invalid input")

// ErrJobNotFound is returned when a call names a job (by key or id) that does
// not exist.
var ErrJobNotFound = errors.New("gworker: job not found")

// DatabaseNewerError is returned by Migrate when the database has a breaking
// migration this version of gworker does not know. Nothing was changed; a
// newer gworker (or graphile-worker) manages this database. graphile-worker
// exits with status 57 in this situation.
type DatabaseNewerError struct {
	Schema         string
	LatestBreaking int // the newest breaking migration in the database
	Known          int // the newest migration this gworker knows
}

func (e *DatabaseNewerError) Error() string {
	return fmt.Sprintf("gworker: schema %q has breaking migration %d but this gworker knows only up to %d; "+
		"it is unsafe to continue: upgrade gworker, or use another schema", e.Schema, e.LatestBreaking, e.Known)
}

// DatabaseTooOldError is returned by Migrate for a schema that a
// graphile-worker older than 0.14 migrated (below migration 11). gworker
// does not carry those legacy upgrade steps.
type DatabaseTooOldError struct {
	Schema string
	Latest int // the newest migration in the database
}

func (e *DatabaseTooOldError) Error() string {
	return fmt.Sprintf("gworker: schema %q is at graphile-worker migration %d, older than 11, which gworker cannot upgrade; "+
		"upgrade it first by running graphile-worker 0.18 once (npx graphile-worker@0.18 --schema-only), or use a new schema", e.Schema, e.Latest)
}

// UnsupportedServerError is returned when the PostgreSQL server is older
// than 12, the oldest version graphile-worker supports.
type UnsupportedServerError struct {
	VersionNum int // server_version_num, e.g. 110022
}

func (e *UnsupportedServerError) Error() string {
	return fmt.Sprintf("gworker: PostgreSQL %d.%d is not supported; version 12 or newer is required",
		e.VersionNum/10000, e.VersionNum%10000)
}
