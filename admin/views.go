package admin

import (
	"context"
	"slices"
	"time"

	"github.com/gworker/gworker/core"
)

// workersView is the workers page: gworker's registered workers, and the
// other lockers (graphile-worker workers, which do not register, or
// gworker workers without recovery) seen by the jobs and queues they hold,
// counted exactly by core.
type workersView struct {
	Workers []core.WorkerInfo
	Others  []core.LockHolder // oldest lock first
}

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
	holders, err := h.u.ListLockHolders(ctx)
	if err != nil {
		return v, err
	}
	for _, l := range holders {
		// A worker that registered after ListActiveWorkers read the
		// registry is neither listed above nor another locker.
		if !l.Registered && !known[l.ID] {
			v.Others = append(v.Others, l)
		}
	}
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
