package core_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"time"

	"github.com/gworker/gworker/core"
)

// Dead-worker recovery is on by default: each worker keeps a heartbeat in
// the schema's registry, and a live worker's sweep hands the jobs of a
// worker whose heartbeat went stale back to the queue. Tighter settings
// find a dead worker sooner, at the cost of more heartbeats.
// ListActiveWorkers shows the registry, and SweepStaleWorkers sweeps by
// hand (here a dry run, which changes nothing).
func ExampleRecoveryOptions() {
	ctx := context.Background()
	db, utils, stop := exampleSetup(ctx, "recovery")
	defer stop()
	if _, err := utils.AddRawJob(ctx, "transcode", nil, nil); err != nil {
		log.Fatal(err)
	}

	worker, err := core.NewWorker(core.WorkerOptions{
		Database: db,
		Schema:   "recovery",
		Logger:   slog.New(slog.DiscardHandler),
		Recovery: core.RecoveryOptions{
			HeartbeatInterval: 10 * time.Second,
			SweepPolicy: core.SweepPolicy{
				StaleThreshold: time.Minute,         // at least twice the heartbeat interval
				Delay:          5 * time.Second,     // before a returned job may run again
				Action:         core.RecoveryReturn, // the attempt does not count
			},
		},
		Tasks: []core.Task{core.RawTask("transcode", func(ctx context.Context, job *core.Job) error {
			workers, err := utils.ListActiveWorkers(ctx, core.ListWorkersOptions{})
			if err != nil {
				return err
			}
			for _, w := range workers {
				fmt.Printf("worker: heartbeat every %v, stale %v, holding %d job(s)\n", w.HeartbeatInterval, w.Stale, w.LockedJobs)
			}
			res, err := utils.SweepStaleWorkers(ctx, core.SweepOptions{DryRun: true})
			if err != nil {
				return err
			}
			fmt.Printf("sweep: %d dead worker(s), %d job(s) to free\n", len(res.WorkerIDs), res.Jobs)
			return nil
		})},
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := worker.RunOnce(ctx); err != nil {
		log.Fatal(err)
	}
	workers, err := utils.ListActiveWorkers(ctx, core.ListWorkersOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("after a clean shutdown: %d worker(s)\n", len(workers))
	// Output:
	// worker: heartbeat every 10s, stale false, holding 1 job(s)
	// sweep: 0 dead worker(s), 0 job(s) to free
	// after a clean shutdown: 0 worker(s)
}
