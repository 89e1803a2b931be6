// Package testkit holds what gworker's tests share: waiting for a condition
// with a deadline, waiting for the events a worker reports (Events, which
// fits core.Hooks.OnEvent) and for its LISTEN session (Listening), and a
// buffer that concurrent writers may fill while a test reads it.
//
// It is for tests only. It imports core, so core's own in-package tests
// cannot use it; its external tests (package core_test) can.
package testkit
