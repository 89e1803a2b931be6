package core_test

import (
	"context"
	"fmt"
	"log"

	"github.com/gworker/gworker/core"
)

// Find jobs, page through them, count them, and act on everything a filter
// matches: here the failed jobs of one task are retried after a dry run.
func ExampleUtils_ListJobs() {
	ctx := context.Background()
	_, utils, stop := exampleSetup(ctx, "inspect")
	defer stop()
	var ids []int64
	for i := range 5 {
		j, err := utils.AddRawJob(ctx, "send_email", map[string]int{"user": i}, &core.JobSpec{MaxAttempts: 1})
		if err != nil {
			log.Fatal(err)
		}
		ids = append(ids, j.ID)
	}
	if _, err := utils.AddRawJob(ctx, "send_emial", nil, nil); err != nil { // a typo: no worker runs it
		log.Fatal(err)
	}
	// Pretend the first three failed for good.
	if _, err := utils.FailMatching(ctx, core.JobSelection{IDs: ids[:3]}, "SMTP timeout"); err != nil {
		log.Fatal(err)
	}

	// Newest first, two per page.
	opts := core.ListJobsOptions{Filter: core.JobFilter{Tasks: []string{"send_email"}}, Limit: 2}
	for page := 1; ; page++ {
		p, err := utils.ListJobs(ctx, opts)
		if err != nil {
			log.Fatal(err)
		}
		for _, j := range p.Jobs {
			fmt.Printf("page %d: %s %s attempts %d/%d\n", page, j.TaskIdentifier, j.Payload, j.Attempts, j.MaxAttempts)
		}
		if p.Next == "" {
			break
		}
		opts.After = p.Next
	}

	stats, err := utils.JobStats(ctx, core.JobStatsOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("exact %v: %d jobs, %d ready, %d failed\n", stats.Exact, stats.Total, stats.ByState[core.JobStateReady], stats.ByState[core.JobStateFailed])

	tasks, err := utils.ListTasks(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, t := range tasks {
		if t.Ready > 0 && len(t.Workers) == 0 {
			fmt.Printf("%d jobs of %q wait for a worker that runs it\n", t.Ready, t.Identifier)
		}
	}

	// Retry the failed ones: count first, then act.
	sel := core.JobSelection{Filter: &core.JobFilter{Tasks: []string{"send_email"}, States: []core.JobState{core.JobStateFailed}}, DryRun: true}
	dry, err := utils.RetryJobs(ctx, sel)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("would retry %d jobs\n", dry.Matched-dry.Skipped)
	sel.DryRun = false
	res, err := utils.RetryJobs(ctx, sel)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("retried %d jobs, skipped %d\n", res.Changed, res.Skipped)
	// Output:
	// page 1: send_email {"user":4} attempts 0/1
	// page 1: send_email {"user":3} attempts 0/1
	// page 2: send_email {"user":2} attempts 1/1
	// page 2: send_email {"user":1} attempts 1/1
	// page 3: send_email {"user":0} attempts 1/1
	// exact true: 6 jobs, 3 ready, 3 failed
	// 2 jobs of "send_email" wait for a worker that runs it
	// 1 jobs of "send_emial" wait for a worker that runs it
	// would retry 3 jobs
	// retried 3 jobs, skipped 0
}

// See which workers hold jobs and queues, with exact counts: graphile-worker
// (Node) workers, which do not register, as well as gworker's.
func ExampleUtils_ListLockHolders() {
	ctx := context.Background()
	db, utils, stop := exampleSetup(ctx, "locks")
	defer stop()
	for i := range 3 {
		spec := &core.JobSpec{QueueName: fmt.Sprintf("album-%d", i%2)}
		if _, err := utils.AddRawJob(ctx, "resize", map[string]int{"image": i}, spec); err != nil {
			log.Fatal(err)
		}
	}
	// A Node worker takes the first two jobs and locks their queues, as
	// graphile-worker's fetch does.
	if _, err := db.Exec(ctx, `with j as (
  update locks._private_jobs set locked_by = 'pool-node', locked_at = now(), attempts = 1
  where id in (select id from locks._private_jobs order by id limit 2) returning job_queue_id)
update locks._private_job_queues q set locked_by = 'pool-node', locked_at = now() from j where q.id = j.job_queue_id`); err != nil {
		log.Fatal(err)
	}

	holders, err := utils.ListLockHolders(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, h := range holders {
		fmt.Printf("%s holds %d jobs and %d queues; registered with gworker: %v\n", h.ID, h.LockedJobs, h.LockedQueues, h.Registered)
	}
	// Output:
	// pool-node holds 2 jobs and 2 queues; registered with gworker: false
}
