package faults

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mathrand "math/rand/v2"
	"os"
	"sync"
	"time"

	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/driver/pgxdriver"
)

// childEnv carries a childConfig, as JSON, to a library worker process: the
// test binary run again, which TestMain turns into childMain.
const childEnv = "GWORKER_FAULTS_CHILD"

// childConfig is what a library worker process runs.
type childConfig struct {
	URL, Schema string
	// Name labels the process in the runs it records.
	Name string
	// RunsFile receives one line per handler run (see runLine).
	RunsFile     string
	Concurrency  int
	LocalQueue   int
	BatchDelay   time.Duration
	PollInterval time.Duration
	Recovery     core.RecoveryOptions
	// MaxSleep bounds the handler's random run time.
	MaxSleep time.Duration
}

// jobPayload is what the producer puts in each job.
type jobPayload struct {
	N int64 `json:"n"`
	// Fail makes the job's first attempt fail, so that failures are
	// recorded during faults as well as completions.
	Fail bool `json:"fail,omitempty"`
}

// deliberateFailure is the error of a job's deliberately failed first
// attempt; the log checks skip the lines that report it.
const deliberateFailure = "faults: first attempts of this job fail on purpose"

// taskName is the task every scenario job runs; longTaskName the one that
// holds a gworker run task process for a while.
const (
	taskName     = "ok"
	longTaskName = "long"
)

// childMain is the library worker process: a core.Worker whose handler
// sleeps a little, records the run and succeeds (or fails a first attempt
// when the payload says so). It shuts down gracefully when its standard
// input closes, and exits 0 if Run returned nil.
func childMain(raw string) int {
	fail := func(format string, args ...any) int {
		fmt.Fprintf(os.Stderr, "faults child: "+format+"\n", args...)
		return 2
	}
	var c childConfig
	if err := json.Unmarshal([]byte(raw), &c); err != nil {
		return fail("bad %s: %v", childEnv, err)
	}
	// Bounded in any case, so that no child outlives a crashed test for long.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	runs, err := os.OpenFile(c.RunsFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fail("%v", err)
	}
	defer runs.Close()
	db, err := pgxdriver.Open(ctx, c.URL)
	if err != nil {
		return fail("open: %v", err)
	}
	defer db.Close()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	// received: job id → when the worker had the answer of the fetch that
	// locked it, an upper bound of that fetch's commit. The handler takes
	// its entry as it starts: a job fetched again after a crash gets the
	// later time.
	var received sync.Map
	onEvent := func(_ context.Context, e core.Event) {
		if f, ok := e.(core.JobsFetched); ok {
			now := time.Now()
			for _, j := range f.Jobs {
				received.Store(j.ID, now)
			}
		}
	}
	handler := func(ctx context.Context, job *core.Job) error {
		start := time.Now()
		fetchDone, _ := received.LoadAndDelete(job.ID)
		var p jobPayload
		if err := json.Unmarshal(job.Payload, &p); err != nil {
			return fmt.Errorf("bad payload: %w", err)
		}
		if c.MaxSleep > 0 {
			time.Sleep(mathrand.N(c.MaxSleep))
		}
		outcome := outcomeOK
		if p.Fail && job.Attempts == 1 {
			outcome = outcomeFail
		}
		// One write of one short line to a file opened with O_APPEND: lines
		// of concurrent handlers never interleave.
		line := runLine{N: p.N, JobID: job.ID, Attempts: job.Attempts, Worker: c.Name,
			Start: start, End: time.Now(), Outcome: outcome}
		if job.LockedAt != nil {
			line.Fetched = *job.LockedAt
		}
		if at, ok := fetchDone.(time.Time); ok {
			line.Received = at
		}
		if _, err := runs.WriteString(line.String()); err != nil {
			return err
		}
		if outcome == outcomeFail {
			return errors.New(deliberateFailure)
		}
		return nil
	}
	tasks := []core.Task{core.RawTask(taskName, handler), core.RawTask(longTaskName, handler)}
	w, err := core.NewWorker(core.WorkerOptions{
		Database:              db,
		Schema:                c.Schema,
		Tasks:                 tasks,
		Concurrency:           c.Concurrency,
		PollInterval:          c.PollInterval,
		Logger:                log,
		LocalQueue:            core.LocalQueueOptions{Size: c.LocalQueue},
		CompleteJobBatchDelay: c.BatchDelay,
		FailJobBatchDelay:     c.BatchDelay,
		Recovery:              c.Recovery,
		Hooks:                 core.Hooks{OnEvent: onEvent},
	})
	if err != nil {
		return fail("NewWorker: %v", err)
	}
	if err := w.Run(ctx); err != nil {
		return fail("Run: %v", err)
	}
	return 0
}
