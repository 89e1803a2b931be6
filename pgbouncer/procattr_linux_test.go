package pgbouncer_test

import "syscall"

// procAttr runs pgbouncer as cred (nil: ourselves) in a process group of
// its own, and has the kernel stop it should the test binary die without
// stopping it.
func procAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Credential: cred, Pdeathsig: syscall.SIGINT}
}
