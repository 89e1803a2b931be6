//go:build unix && !linux

package pgbouncer_test

import "syscall"

// procAttr runs pgbouncer as cred (nil: ourselves) in a process group of
// its own.
func procAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Credential: cred}
}
