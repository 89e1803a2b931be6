//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package main

// stdinIsTerminal is false where gworker cannot tell: a filter action then
// needs --yes.
func stdinIsTerminal() bool { return false }
