package admin

import (
	"context"
	"slices"
	"time"

	"github.com/gworker/gworker/core"
)

// workersView is the workers page: gworker's registered workers, and the
// other lockers (graphile-worker workers, which do not register, or
// gworker workers without recovery) seen by the jobs and queues they hold.
type workersView struct {
	Workers []core.WorkerInfo
	Others  []otherLocker
	// Partial says the running jobs were too many to read all of them, so
	// the other lockers' counts are a lower bound.
	Partial bool
}

type otherLocker struct {
	ID         string
	Jobs       int
	Queues     int
	OldestLock time.Time
}

// maxLockedScan caps how many running jobs the workers view reads.
const maxLockedScan = 5 * core.MaxPageSize

func (h *handler) workers(ctx context.Context) (workersView, error) {
	var v workersView
	ws, err := h.u.ListActiveWorkers(ctx, core.ListWorkersOptions{StaleThreshold: h.threshold})
	if err != nil {
		return v, err
	}
	v.Workers = ws
	known := map[string]bool{}
	for _, w := range ws {
		known[w.ID] = true
	}
	others := map[string]*otherLocker{}
	other := func(id string, at time.Time) *otherLocker {
		o := others[id]
		if o == nil {
			o = &otherLocker{ID: id, OldestLock: at}
			others[id] = o
		}
		if at.Before(o.OldestLock) {
			o.OldestLock = at
		}
		return o
	}
	// Running jobs are few next to the table, and the state filter stops
	// at the page's end; read pages until they are done or the cap.
	opts := core.ListJobsOptions{Filter: core.JobFilter{States: []core.JobState{core.JobStateRunning}}, Limit: core.MaxPageSize}
	for read := 0; ; {
		page, err := h.u.ListJobs(ctx, opts)
		if err != nil {
			return v, err
		}
		for _, j := range page.Jobs {
			if j.LockedBy != "" && !known[j.LockedBy] && j.LockedAt != nil {
				other(j.LockedBy, *j.LockedAt).Jobs++
			}
		}
		read += len(page.Jobs)
		if page.Next == "" {
			break
		}
		if read >= maxLockedScan {
			v.Partial = true
			break
		}
		opts.After = page.Next
	}
	qs, err := h.u.ListQueues(ctx)
	if err != nil {
		return v, err
	}
	for _, q := range qs {
		if q.LockedBy != "" && !known[q.LockedBy] && q.LockedAt != nil {
			other(q.LockedBy, *q.LockedAt).Queues++
		}
	}
	for _, o := range others {
		v.Others = append(v.Others, *o)
	}
	slices.SortFunc(v.Others, func(a, b otherLocker) int { return a.OldestLock.Compare(b.OldestLock) })
	return v, nil
}

// cronItem is a cron entry: known to the database, in Options.Crontab, or
// both.
type cronItem struct {
	Identifier    string
	Task          string // from the crontab; "" when not given
	Schedule      string
	KnownSince    *time.Time
	LastExecution *time.Time
	Next          *time.Time
}

func (h *handler) cron(ctx context.Context) ([]cronItem, error) {
	known, err := h.u.ListKnownCrontabs(ctx)
	if err != nil {
		return nil, err
	}
	var out []cronItem
	idx := map[string]int{}
	for _, k := range known {
		idx[k.Identifier] = len(out)
		out = append(out, cronItem{Identifier: k.Identifier, KnownSince: &k.KnownSince, LastExecution: k.LastExecution})
	}
	now := time.Now()
	for _, e := range h.crontab {
		i, ok := idx[e.Identifier]
		if !ok {
			i = len(out)
			out = append(out, cronItem{Identifier: e.Identifier})
		}
		next := e.Schedule.Next(now)
		out[i].Task, out[i].Schedule, out[i].Next = e.Task, e.Schedule.String(), &next
	}
	slices.SortFunc(out, func(a, b cronItem) int {
		switch {
		case a.Identifier < b.Identifier:
			return -1
		case a.Identifier > b.Identifier:
			return 1
		}
		return 0
	})
	return out, nil
}
