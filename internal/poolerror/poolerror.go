// Package poolerror holds the one error every driver returns when its
// listening connection goes through a connection pooler that loses a
// LISTEN, so that the advice it gives is the same whichever driver found
// out, and however.
package poolerror

import "github.com/gworker/gworker/core"

// Cause is why a connection cannot keep a LISTEN, for a Reason that adds
// how the driver found out.
const Cause = "it goes through a connection pooler that does not keep a session between transactions " +
	"(PgBouncer in transaction pooling mode, say)"

// defaultReason is what Error says when Reason is empty.
const defaultReason = Cause + ", so no notification would arrive"

// Error is a driver's Listen error (after "DRIVER: listen: ") for a
// connection that cannot keep a LISTEN. It wraps
// core.ErrNotificationsUnsupported, so that a worker polls and says why
// once, instead of retrying a LISTEN that can never work.
type Error struct {
	// Reason says how the driver found out; empty means the connection
	// goes through a pooler that does not keep a session.
	Reason string
	// ListenOption is the driver's option that names a direct connection,
	// as the user writes it ("pgxdriver.ListenDSN(url)").
	ListenOption string
}

func (e *Error) Error() string {
	reason := e.Reason
	if reason == "" {
		reason = defaultReason
	}
	return "LISTEN cannot work on this connection: " + reason + "; give the driver a direct connection to PostgreSQL " +
		"(or a session pooling port) for LISTEN with " + e.ListenOption + " (gworker run: --listen-connection URL)"
}

func (e *Error) Unwrap() error { return core.ErrNotificationsUnsupported }
