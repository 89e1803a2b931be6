//go:build !unix

package pgtest

import (
	"context"
	"fmt"
)

// startLocal is Unix-only: it relies on process groups, signals and
// switching users.
func startLocal(context.Context, Options) (*Server, error) {
	return nil, fmt.Errorf("%w: local clusters need a Unix system", ErrNoServerBinaries)
}
