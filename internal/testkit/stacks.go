package testkit

import (
	"runtime"
	"strings"
)

// Goroutines returns the stacks of this process's goroutines that mention
// frame (a function's qualified name, or part of one), for a test's
// failure message: where the code under test waits instead says why.
func Goroutines(frame string) string {
	buf := make([]byte, 1<<22)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, frame) {
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}
