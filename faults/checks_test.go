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
				continue
			}
			s.res.duplicates++
			unexplained = append(unexplained, fmt.Sprintf("job n=%d ran %d times: %s", n, len(rs), describeRuns(rs)))
		}
	}
	if len(unexplained) > 0 {
		slices.Sort(unexplained)
		s.failf("%d runs of jobs that had run already, with no crash to explain them:\n  %s",
			len(unexplained), strings.Join(head(unexplained, 20), "\n  "))
	}
	if s.res.explained > 0 {
		s.t.Logf("%d runs repeated a run that a crash interrupted or made the database forget", s.res.explained)
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

// explain says why cur may repeat prev, or "" if nothing does.
func (s *scenario) explain(prev, cur runLine) string {
	for _, p := range s.procs {
		if p.spec.name == prev.Worker && !p.killedAt.IsZero() && cur.Start.After(p.killedAt) {
			return prev.Worker + " was killed"
		}
	}
	// A crash may forget a fetch (committed without waiting for the WAL
	// flush) whose job a local queue then runs during or after the outage:
	// what counts is when the earlier run's job was fetched.
	for _, at := range s.crashes {
		if prev.fetchedBy().Before(at) && cur.Start.After(at) {
			return "the database crashed between the runs"
		}
	}
	return ""
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
					bad = append(bad, l.at.Format("15:04:05.000")+" "+l.text)
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
		parts = append(parts, fmt.Sprintf("[id %d attempt %d by %s %s-%s %s]", r.JobID, r.Attempts, r.Worker,
			r.Start.Format("15:04:05.000"), r.End.Format("15:04:05.000"), r.Outcome))
	}
	return strings.Join(parts, " ")
}

func head(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], fmt.Sprintf("... and %d more", len(s)-n))
	}
	return s
}
