package faults

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// warnOrError matches a WARN or ERROR record of slog's text handler, which
// both kinds of worker process log with.
var warnOrError = regexp.MustCompile(`\blevel=(WARN|ERROR)\b`)

// settle ends a fault's aftermath: it adds a batch of new jobs, some in
// named queues, which must run although the fault just ended, and waits
// for the jobs table to empty.
func (s *scenario) settle(w *window) {
	s.t.Helper()
	s.mustAddJobs(max(20, s.rate/4), nil)
	if at, ok := s.waitDrained(w.end, s.prof.drainWithin); ok {
		w.drainedAt = at
	}
}

// finish checks the workers are all alive, stops them, and checks the
// runs and the logs against the jobs added.
func (s *scenario) finish() {
	s.t.Helper()
	s.stopLoad()
	for _, p := range s.procs {
		if p.killedAt.IsZero() && !p.alive() {
			s.failf("%s exited on its own: %v\n%s", p.spec.name, p.waitErr, p.log.tail(40))
		}
	}
	s.stopAll()
	s.checkLogs()

	runs, err := loadRuns(s.dir)
	if err != nil {
		s.t.Fatal(err)
	}
	byJob := map[int64][]runLine{}
	for _, r := range runs {
		byJob[r.N] = append(byJob[r.N], r)
	}
	s.mu.Lock()
	s.res.jobs = len(s.added)
	added := make([]int64, 0, len(s.added))
	for n := range s.added {
		added = append(added, n)
	}
	addErrors := s.addErrors
	s.mu.Unlock()
	slices.Sort(added)
	if addErrors > 0 {
		s.t.Logf("%d add statements failed during faults (their jobs are not counted unless they ran)", addErrors)
	}

	// Lost: added, never run to success.
	var lost []string
	for _, n := range added {
		if s.removed[n] {
			continue
		}
		if !slices.ContainsFunc(byJob[n], func(r runLine) bool { return r.Outcome == outcomeOK }) {
			lost = append(lost, fmt.Sprintf("job n=%d (runs: %s)", n, describeRuns(byJob[n])))
		}
	}
	s.res.lost = len(lost)
	if len(lost) > 0 {
		s.failf("%d jobs lost, never run to success:\n  %s", len(lost), strings.Join(head(lost, 20), "\n  "))
	}

	// Duplicates: a run after a successful one, or after a failure the job
	// did not ask for, unless a crash explains it.
	var unexplained []string
	for n, rs := range byJob {
		slices.SortFunc(rs, func(a, b runLine) int { return a.Start.Compare(b.Start) })
		for i := 1; i < len(rs); i++ {
			prev, cur := rs[i-1], rs[i]
			p, _ := jobSpec(n)
			if prev.Outcome == outcomeFail && p.Fail && prev.Attempts == 1 {
				continue // the retry its deliberate failure asked for
			}
			if why := s.explain(prev, cur); why != "" {
				s.res.explained++
				if s.res.explained <= 20 {
					s.t.Logf("job n=%d ran again: %s: %s", n, why, describeRuns(rs))
				}
				continue
			}
			s.res.duplicates++
			unexplained = append(unexplained, fmt.Sprintf("job n=%d ran %d times: %s", n, len(rs), describeRuns(rs)))
		}
	}
	if len(unexplained) > 0 {
		slices.Sort(unexplained)
		s.failf("%d runs of jobs that had run already, with neither a SIGKILLed worker nor a fetch a crash forgot to explain them:\n  %s%s",
			len(unexplained), strings.Join(head(unexplained, 20), "\n  "), s.describeFaults())
	}
	if s.res.explained > 0 {
		s.t.Logf("%d runs repeated a run that a kill interrupted or whose fetch a crash made the database forget", s.res.explained)
	}

	// Time to recover, the worst over the fault's repetitions.
	s.res.recovered = len(s.windows) > 0
	for _, w := range s.windows {
		first := time.Time{}
		for _, r := range runs {
			// A run started after the fault: a fetch worked again (one that
			// merely ended then may have come from a local queue's buffer).
			if r.Outcome == outcomeOK && r.Start.After(w.end) && (first.IsZero() || r.End.Before(first)) {
				first = r.End
			}
		}
		if first.IsZero() || w.drainedAt.IsZero() {
			s.res.recovered = false
			continue
		}
		s.res.firstRun = max(s.res.firstRun, first.Sub(w.end))
		s.res.drained = max(s.res.drained, w.drainedAt.Sub(w.end))
	}
	if s.res.recovered {
		s.t.Logf("%d jobs; recovered: first job fetched and run %v after the fault, jobs table empty after %v",
			s.res.jobs, s.res.firstRun.Round(time.Millisecond), s.res.drained.Round(time.Millisecond))
	}
}

// explain names the mechanism that lets cur repeat prev, a run of the same
// job, or returns "" if none does. There are two, each checked as narrowly
// as the runs allow, and in both the second run counts the same attempt as
// the first (the attempt was given back, or never recorded); a repeat
// counting one more attempt means the first fetch was remembered and the
// job freed by something else, which no fault here excuses.
//
//   - a SIGKILLed worker: the outcome of a run it began before it died may
//     not have been committed (it waited in the batch or its statement was
//     in flight), so the job stays locked by the dead worker until the
//     sweep of dead workers returns it, the attempt not counted (the
//     default action, which the SIGKILL scenarios keep): at-least-once.
//     The second run began after the kill.
//   - a fetch the database forgot: a fetch commits with synchronous_commit
//     off unless it records completions (core's fetchSQL), and an immediate
//     shutdown loses it if its commit record was not yet written out. The
//     WAL writer writes asynchronous commits out within 3 × wal_writer_delay
//     (PostgreSQL's documentation on asynchronous commit), and any durable
//     commit after one writes it too, so only a fetch committed at most that
//     long before the postmaster was signalled can be lost, or one committed
//     during the shutdown itself: backends still commit for a moment after
//     the signal, when the WAL writer may be gone already (seen: fetches
//     committed 23 ms after the signal, forgotten). Its job is then unlocked
//     as it was, the attempt not counted; the second run began after the
//     server was down. A fetch that recorded completions is durable: it is
//     remembered, and the same-attempt check tells it apart.
func (s *scenario) explain(prev, cur runLine) string {
	if cur.Attempts == prev.Attempts {
		for _, p := range s.procs {
			if p.spec.name == prev.Worker && !p.killedAt.IsZero() && prev.Start.Before(p.killedAt) && cur.Start.After(p.killedAt) {
				return fmt.Sprintf("%s was SIGKILLed at %s with the outcome of this run perhaps not committed, and the sweep of dead workers returned the job, the attempt not counted",
					prev.Worker, p.killedAt.Format(clock))
			}
		}
		for _, c := range s.crashes {
			if why := c.forgot(prev, cur); why != "" {
				return why
			}
		}
	}
	return ""
}

// asyncCommitRisk is how long before a crash a commit made with
// synchronous_commit off may still be lost: the WAL writer writes it out
// within three wal_writer_delay cycles at worst.
func (c crash) asyncCommitRisk() time.Duration { return 3 * c.walWriterDelay }

// forgot says how c made the database forget the fetch of prev, which cur
// repeats, or returns "" if it cannot have.
func (c crash) forgot(prev, cur runLine) string {
	from, to := prev.fetchCommit()
	risk := c.asyncCommitRisk()
	if !cur.Start.After(c.down) || !to.After(c.at.Add(-risk)) || (!from.IsZero() && !from.Before(c.down)) {
		return ""
	}
	return fmt.Sprintf("the immediate shutdown (signalled at %s, server gone at %s) forgot the fetch of the first run, "+
		"committed with synchronous_commit off %s, after %s (3 × wal_writer_delay %v before the signal), and the second run counts the same attempt",
		c.at.Format(clock), c.down.Format(clock), describeCommit(from, to), c.at.Add(-risk).Format(clock), c.walWriterDelay)
}

// clock formats the times of the checks' messages.
const clock = "15:04:05.000"

func describeCommit(from, to time.Time) string {
	if from.IsZero() {
		return "by " + to.Format(clock)
	}
	return "between " + from.Format(clock) + " and " + to.Format(clock)
}

// checkLogs bounds each live process's warnings and errors per fault
// window, and makes sure they said something when the fault called for it.
func (s *scenario) checkLogs() {
	s.t.Helper()
	for i, w := range s.windows {
		limit := w.opts.maxLogLines
		if limit == 0 {
			limit = defaultMaxLogLines
		}
		for _, p := range s.procs {
			if !p.killedAt.IsZero() && p.killedAt.Before(w.end) {
				continue
			}
			var bad []string
			for _, l := range p.log.between(w.start, w.end.Add(logSettle)) {
				if warnOrError.MatchString(l.text) && !strings.Contains(l.text, deliberateFailure) {
					bad = append(bad, l.at.Format(clock)+" "+l.text)
				}
			}
			s.t.Logf("fault %d (%v): %s logged %d warnings and errors", i+1, w.end.Sub(w.start).Round(time.Millisecond),
				p.spec.name, len(bad))
			if len(bad) > limit {
				s.failf("%s logged %d warnings and errors during a %v fault; at most %d are wanted, not one per retry or job:\n  %s",
					p.spec.name, len(bad), w.end.Sub(w.start).Round(time.Second), limit, strings.Join(head(bad, 40), "\n  "))
			}
			if w.opts.expectLog && len(bad) == 0 {
				s.failf("%s logged no warning or error during a %v fault it could not work through",
					p.spec.name, w.end.Sub(w.start).Round(time.Second))
			}
		}
	}
}

func describeRuns(rs []runLine) string {
	if len(rs) == 0 {
		return "none"
	}
	var parts []string
	for _, r := range rs {
		fetched := ""
		if from, to := r.fetchCommit(); !from.IsZero() {
			fetched = " fetched " + describeCommit(from, to)
		}
		parts = append(parts, fmt.Sprintf("[id %d attempt %d by %s%s ran %s-%s %s]", r.JobID, r.Attempts, r.Worker,
			fetched, r.Start.Format(clock), r.End.Format(clock), r.Outcome))
	}
	return strings.Join(parts, " ")
}

// describeFaults lists the kills and crashes, for a failure's message.
func (s *scenario) describeFaults() string {
	var parts []string
	for _, p := range s.procs {
		if !p.killedAt.IsZero() {
			parts = append(parts, fmt.Sprintf("%s SIGKILLed at %s", p.spec.name, p.killedAt.Format(clock)))
		}
	}
	for _, c := range s.crashes {
		parts = append(parts, fmt.Sprintf("immediate shutdown from %s to %s (wal_writer_delay %v)", c.at.Format(clock), c.down.Format(clock), c.walWriterDelay))
	}
	if len(parts) == 0 {
		return "\n(no kill, no crash)"
	}
	return "\n(" + strings.Join(parts, "; ") + ")"
}

func head(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], fmt.Sprintf("... and %d more", len(s)-n))
	}
	return s
}
