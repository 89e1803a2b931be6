package pgbouncer_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/gworker/gworker/core"
)

// A timeline records, in one order for all of a test's workers, what the
// test needs to know to tell why a worker fetched: each fetch's start (its
// FetchStarted event) and return (its JobsFetched event), each LISTEN session the driver opened and each
// message it delivered, and the test's own steps and handlers.
//
// A worker fetches on its own only at start (once), when its poll interval
// passes (an hour here) and when outcomes it recorded freed slots. Every
// other fetch answers something its listen session delivered: the LISTEN
// itself (the worker looks once it listens), a jobs:insert notification or
// a reconnection. While the timeline is gated, the probe hands the worker
// such a message only once the worker is idle (every fetch it started has
// returned, and the last message it was handed has been answered by a
// fetch that returned), so that each of them is answered by exactly one
// fetch, and a worker that is idle stays idle until the next message. A
// worker that has run no job yet has recorded no outcome, so while gated
// and before its first job, "idle" is not a guess: nothing but the next
// message can make it fetch.
type timeline struct {
	mu      sync.Mutex
	changed chan struct{} // closed and replaced at each change
	entries []entry
	workers []*probeState
	gated   bool
}

type probeState struct {
	listening       bool
	listenErr       error
	starts, returns int
	// owed: a message that makes the worker fetch was handed to it, and
	// no fetch has returned since.
	owed bool
}

// entry is one step. worker is the worker's index, -1 for the test.
type entry struct {
	seq    int
	worker int
	kind   string
	jobs   []int64 // kindFetched: the jobs the fetch locked
}

const (
	kindFetch       = "fetch"   // a fetch started
	kindFetched     = "fetched" // it returned
	kindListen      = "listen"  // LISTEN is in place
	kindInsert      = "notify:jobs:insert"
	kindReconnected = "reconnected"
	kindMark        = "mark" // the test saw every worker idle
)

func newTimeline(workers int, gated bool) *timeline {
	tl := &timeline{changed: make(chan struct{}), gated: gated}
	for range workers {
		tl.workers = append(tl.workers, &probeState{owed: true}) // the first fetch
	}
	return tl
}

// record appends a step and returns its sequence number.
func (tl *timeline) record(worker int, kind string, jobs []int64) int {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return tl.recordLocked(worker, kind, jobs)
}

func (tl *timeline) recordLocked(worker int, kind string, jobs []int64) int {
	e := entry{seq: len(tl.entries) + 1, worker: worker, kind: kind, jobs: jobs}
	tl.entries = append(tl.entries, e)
	close(tl.changed)
	tl.changed = make(chan struct{})
	return e.seq
}

// waitLocked releases tl.mu until the timeline changes or ctx ends, and
// returns ctx.Err(). tl.mu is held on entry and on return.
func (tl *timeline) waitLocked(ctx context.Context) error {
	changed := tl.changed
	tl.mu.Unlock()
	select {
	case <-changed:
	case <-ctx.Done():
	}
	tl.mu.Lock()
	return ctx.Err()
}

// idle: every fetch the worker started has returned, and the last message
// that makes it fetch has been answered. tl.mu is held.
func (s *probeState) idle() bool { return !s.owed && s.starts == s.returns }

// deliver records that worker's listen session hands it a message of
// kind; fetches says the worker fetches because of it. While gated, it
// first waits until the worker is idle (or ctx ends).
func (tl *timeline) deliver(ctx context.Context, worker int, kind string, fetches bool) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	s := tl.workers[worker]
	for tl.gated && fetches && !s.idle() {
		if tl.waitLocked(ctx) != nil {
			break
		}
	}
	if kind == kindListen {
		s.listening = true
	}
	if tl.gated && fetches {
		s.owed = true
	}
	tl.recordLocked(worker, kind, nil)
}

func (tl *timeline) listenFailed(worker int, err error) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.workers[worker].listenErr = err
	tl.recordLocked(worker, "listen failed", nil)
}

// fetchStarted takes the worker's FetchStarted event.
func (tl *timeline) fetchStarted(worker int) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.workers[worker].starts++
	tl.recordLocked(worker, kindFetch, nil)
}

// fetched takes the worker's JobsFetched event.
func (tl *timeline) fetched(worker int, jobs []*core.Job) {
	ids := make([]int64, len(jobs))
	for i, j := range jobs {
		ids[i] = j.ID
	}
	tl.mu.Lock()
	defer tl.mu.Unlock()
	s := tl.workers[worker]
	s.returns++
	s.owed = false
	tl.recordLocked(worker, kindFetched, ids)
}

// ungate lets messages through without waiting.
func (tl *timeline) ungate() {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.gated = false
	tl.recordLocked(-1, "ungated", nil)
}

// markIdle records kindMark and returns its sequence number once every
// worker listens and is idle; it fails at once when a worker could not
// LISTEN, and when ctx ends.
func (tl *timeline) markIdle(ctx context.Context) (int, error) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	for {
		all := true
		for i, s := range tl.workers {
			if s.listenErr != nil {
				return 0, fmt.Errorf("worker %d could not LISTEN: %w", i, s.listenErr)
			}
			all = all && s.listening && s.idle()
		}
		if all {
			return tl.recordLocked(-1, kindMark, nil), nil
		}
		if err := tl.waitLocked(ctx); err != nil {
			return 0, fmt.Errorf("%w; the workers: %s", err, tl.stateLocked())
		}
	}
}

// await waits until cond, called with the entries so far, holds.
func (tl *timeline) await(ctx context.Context, cond func([]entry) bool) error {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	for !cond(tl.entries) {
		if err := tl.waitLocked(ctx); err != nil {
			return err
		}
	}
	return nil
}

// snapshot returns the entries so far.
func (tl *timeline) snapshot() []entry {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return slices.Clone(tl.entries)
}

func (tl *timeline) stateLocked() string {
	var b strings.Builder
	for i, s := range tl.workers {
		fmt.Fprintf(&b, "[%d: listening %v, fetches started %d, returned %d, owed %v] ", i, s.listening, s.starts, s.returns, s.owed)
	}
	return b.String()
}

// String lists the entries, for a failing test's log.
func (tl *timeline) String() string {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	var b strings.Builder
	b.WriteString(tl.stateLocked())
	for _, e := range tl.entries {
		fmt.Fprintf(&b, "\n  %d worker %d %s", e.seq, e.worker, e.kind)
		if e.jobs != nil {
			fmt.Fprintf(&b, " %v", e.jobs)
		}
	}
	return b.String()
}

// probe is the Database of worker i: its LISTEN sessions report to tl.
type probe struct {
	core.Database
	tl *timeline
	i  int
}

func (p probe) Listen(ctx context.Context, channels ...string) (core.Notifications, error) {
	s, err := p.Database.Listen(ctx, channels...)
	if err != nil {
		p.tl.listenFailed(p.i, err)
		return nil, err
	}
	p.tl.deliver(ctx, p.i, kindListen, true)
	return probeSession{Notifications: s, p: p}, nil
}

type probeSession struct {
	core.Notifications
	p probe
}

func (s probeSession) Receive(ctx context.Context) (core.Notification, error) {
	m, err := s.Notifications.Receive(ctx)
	if err != nil {
		return m, err
	}
	switch {
	case m.Reconnected:
		s.p.tl.deliver(ctx, s.p.i, kindReconnected, true)
	case m.Channel == "jobs:insert":
		s.p.tl.deliver(ctx, s.p.i, kindInsert, announces(m.Payload))
	default:
		s.p.tl.deliver(ctx, s.p.i, "notify:"+m.Channel, false)
	}
	return m, nil
}

// announces reports whether a jobs:insert payload announces new jobs
// ({"count": n} with n > 0; a payload without a count announces one), as
// graphile-worker's payloads do; a removed job's payload counts -1.
func announces(payload string) bool {
	var p struct {
		Count *float64 `json:"count"`
	}
	if json.Unmarshal([]byte(payload), &p) != nil || p.Count == nil {
		return true
	}
	return *p.Count > 0
}
