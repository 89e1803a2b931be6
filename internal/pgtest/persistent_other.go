//go:build !unix

package pgtest

import (
	"context"
	"errors"
	"fmt"
)

// StartPersistent is Unix-only, like local clusters; see persistent_unix.go.
func StartPersistent(context.Context, string, int, Options) (*Server, error) {
	return nil, fmt.Errorf("%w: local clusters need a Unix system", ErrNoServerBinaries)
}

// ErrPortInUse is returned by StartPersistent on Unix when another program
// listens on the port asked for.
var ErrPortInUse = errors.New("port already in use")

// StopPersistent is Unix-only; there is never a server to stop elsewhere.
func StopPersistent(context.Context, string) (bool, error) { return false, nil }

// ServerCanReach is Unix-only; elsewhere no server runs at all.
func ServerCanReach(string) bool { return true }
