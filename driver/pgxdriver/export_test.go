package pgxdriver

import "github.com/gworker/gworker/core"

// ListenerPID returns the backend PID of a Notifications session's current
// connection, or 0 while it has none, so tests can terminate it.
func ListenerPID(n core.Notifications) uint32 {
	return n.(*notifications).pid.Load()
}

// Busy reports whether a Receive (or Close) currently holds the session.
func Busy(n core.Notifications) bool {
	return len(n.(*notifications).sem) == 1
}
