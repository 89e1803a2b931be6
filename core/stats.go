package core

import (
	"context"
	"fmt"
)

// availableJobsSQL counts the jobs a worker could fetch now, over the index
// workers fetch from (jobs_main_index covers is_available = true).
const availableJobsSQL = `select count(*) from {{schema}}._private_jobs where is_available = true and run_at <= now()`

// CountAvailableJobs returns the queue depth: how many jobs could run now
// (not locked, attempts left, run_at reached), whatever their task. Jobs
// waiting behind a busy named queue count too. It runs one count over the
// index workers fetch from, so it is cheap for modest backlogs but grows
// with the backlog: poll it, do not call it per job.
func (u *Utils) CountAvailableJobs(ctx context.Context) (int64, error) {
	rows, err := u.ex.Query(ctx, newRenderer(u.schema).render(availableJobsSQL))
	if err != nil {
		return 0, fmt.Errorf("gworker: count available jobs: %w", err)
	}
	defer rows.Close()
	var n int64
	if rows.Next() {
		if err := rows.Scan(&n); err != nil {
			return 0, fmt.Errorf("gworker: count available jobs: %w", err)
		}
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("gworker: count available jobs: %w", err)
	}
	return n, nil
}
