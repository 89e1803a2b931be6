package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/gworker/gworker/core"
)

// recoveryFlags are run's dead-worker recovery flags.
type recoveryFlags struct {
	disabled bool
	opts     core.RecoveryOptions
}

func (r *recoveryFlags) register(fs *flagSet) {
	r.opts = core.RecoveryOptions{HeartbeatInterval: core.DefaultHeartbeatInterval, SweepInterval: core.DefaultSweepInterval}
	fs.flag(&boolValue{p: &r.disabled}, "", "turn dead-worker recovery off: no heartbeat, no sweep; crashed workers' jobs wait 4 hours", "no-recovery")
	fs.flag(&durationValue{p: &r.opts.HeartbeatInterval, min: time.Millisecond}, "DURATION", fmt.Sprintf("how often this worker records that it is alive (default: %v)", core.DefaultHeartbeatInterval), "heartbeat-interval")
	fs.flag(&durationValue{p: &r.opts.SweepInterval, min: time.Millisecond}, "DURATION", fmt.Sprintf("how often to look for dead workers (default: %v)", core.DefaultSweepInterval), "sweep-interval")
	registerPolicy(fs, &r.opts.SweepPolicy, policyFlags{threshold: "sweep-threshold", delay: "recovery-delay", action: "recovery-action", foreign: "sweep-foreign-locks"})
}

// options returns the worker's RecoveryOptions, or a usage error.
func (r *recoveryFlags) options() (core.RecoveryOptions, error) {
	if r.disabled {
		return core.RecoveryOptions{Disabled: true}, nil
	}
	o := r.opts
	// Checked here too, to name the flags rather than core's fields.
	if o.StaleThreshold < 2*o.HeartbeatInterval {
		return core.RecoveryOptions{}, usagef("--sweep-threshold (%v) must be at least twice --heartbeat-interval (%v)", o.StaleThreshold, o.HeartbeatInterval)
	}
	o.SweepPolicy = corePolicy(o.SweepPolicy)
	return o, nil
}

// policyFlags names the flags of a core.SweepPolicy; run's and sweep's
// differ.
type policyFlags struct{ threshold, delay, action, foreign string }

// registerPolicy sets p to core's defaults and binds its flags.
func registerPolicy(fs *flagSet, p *core.SweepPolicy, names policyFlags) {
	*p = core.SweepPolicy{StaleThreshold: core.DefaultStaleThreshold, Delay: core.DefaultRecoveryDelay, Action: core.DefaultRecoveryAction}
	fs.flag(&durationValue{p: &p.StaleThreshold, min: time.Millisecond}, "DURATION", fmt.Sprintf("a worker whose last heartbeat is older is dead; its jobs are recovered (default: %v)", core.DefaultStaleThreshold), names.threshold)
	fs.flag(&durationValue{p: &p.Delay}, "DURATION", fmt.Sprintf("how long a recovered job waits before it runs again; 0 means none (default: %v)", core.DefaultRecoveryDelay), names.delay)
	fs.flag(&actionValue{p: &p.Action}, "ACTION", fmt.Sprintf("what happens to a dead worker's jobs: return (attempt not counted), fail_with_backoff or skip (default: %s)", core.DefaultRecoveryAction), names.action)
	fs.flag(&boolValue{p: &p.SweepForeignLocks}, "", "also free locks of workers that do not heartbeat (graphile-worker's) once older than the threshold", names.foreign)
}

// corePolicy returns the policy the flags set as core takes it: a delay of
// 0 means none on the command line, but the default in core.
func corePolicy(p core.SweepPolicy) core.SweepPolicy {
	if p.Delay == 0 {
		p.Delay = -1
	}
	return p
}

// actionValue is a recovery action.
type actionValue struct{ p *core.RecoveryAction }

func (v *actionValue) String() string {
	if v == nil || v.p == nil {
		return ""
	}
	return string(*v.p)
}
func (v *actionValue) Set(s string) error {
	switch a := core.RecoveryAction(s); a {
	case core.RecoveryReturn, core.RecoveryFailWithBackoff, core.RecoverySkip:
		*v.p = a
		return nil
	}
	return fmt.Errorf("want %s, %s or %s", core.RecoveryReturn, core.RecoveryFailWithBackoff, core.RecoverySkip)
}

func workersCommand() *command {
	return &command{
		name:     "workers",
		synopsis: "[--threshold DURATION] [--json]",
		summary:  "list the running gworker workers and how fresh their heartbeats are",
		help: `
Lists the gworker workers registered in the schema, oldest first: each
running "gworker run" (or Go worker) with dead-worker recovery on, and dead
ones no sweep has removed yet. STATE is "stale" when the last heartbeat is
older than the threshold (default 5m, or twice the worker's own heartbeat
interval if longer): a sweep would take that worker for dead and recover its
jobs. JOBS is how many jobs the worker holds. graphile-worker (Node) workers
do not register and are not listed.

With --json it prints one JSON array of objects with the keys id, hostname,
pid, version, concurrency, run_once, heartbeat_interval_seconds, started_at,
last_heartbeat_at, heartbeat_age_seconds, stale and locked_jobs.`,
		setup: func(fs *flagSet) action {
			threshold := core.DefaultStaleThreshold
			asJSON := false
			fs.flag(&durationValue{p: &threshold, min: time.Millisecond}, "DURATION", fmt.Sprintf("heartbeats older than this are stale (default: %v)", core.DefaultStaleThreshold), "threshold")
			fs.flag(&boolValue{p: &asJSON}, "", "print JSON", "json")
			return func(ctx context.Context, e *env, args []string) error {
				if len(args) > 0 {
					return usagef("workers takes no arguments, got %q", args[0])
				}
				return listWorkers(ctx, e, fs.opts, threshold, asJSON)
			}
		},
	}
}

type workerJSON struct {
	ID                string    `json:"id"`
	Hostname          string    `json:"hostname"`
	PID               int       `json:"pid"`
	Version           string    `json:"version"`
	Concurrency       int       `json:"concurrency"`
	RunOnce           bool      `json:"run_once"`
	HeartbeatInterval float64   `json:"heartbeat_interval_seconds"`
	StartedAt         time.Time `json:"started_at"`
	LastHeartbeatAt   time.Time `json:"last_heartbeat_at"`
	HeartbeatAge      float64   `json:"heartbeat_age_seconds"`
	Stale             bool      `json:"stale"`
	LockedJobs        int       `json:"locked_jobs"`
}

func listWorkers(ctx context.Context, e *env, opts *commonFlags, threshold time.Duration, asJSON bool) error {
	u, closeDB, err := openUtils(ctx, e, opts)
	if err != nil {
		return err
	}
	defer closeDB()
	infos, err := u.ListActiveWorkers(ctx, core.ListWorkersOptions{StaleThreshold: threshold})
	if err != nil {
		return err
	}
	if asJSON {
		out := make([]workerJSON, len(infos))
		for i, w := range infos {
			out[i] = workerJSON{ID: w.ID, Hostname: w.Hostname, PID: w.PID, Version: w.Version, Concurrency: w.Concurrency,
				RunOnce: w.RunOnce, HeartbeatInterval: w.HeartbeatInterval.Seconds(), StartedAt: w.StartedAt.UTC(),
				LastHeartbeatAt: w.LastHeartbeatAt.UTC(), HeartbeatAge: w.HeartbeatAge.Seconds(), Stale: w.Stale, LockedJobs: w.LockedJobs}
		}
		b, err := json.Marshal(out)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(e.stdout, "%s\n", b)
		return err
	}
	if len(infos) == 0 {
		_, err := fmt.Fprintf(e.stdout, "no gworker worker is registered in schema %q\n", u.Schema())
		return err
	}
	tw := newTable(e.stdout)
	fmt.Fprintln(tw, "WORKER\tHOST\tPID\tVERSION\tSTARTED (UTC)\tLAST HEARTBEAT\tSTATE\tJOBS")
	for _, w := range infos {
		state := "alive"
		if w.Stale {
			state = "stale"
		}
		version := w.Version
		if version == "" {
			version = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s ago\t%s\t%d\n", w.ID, w.Hostname, w.PID, version,
			w.StartedAt.UTC().Format(time.RFC3339), w.HeartbeatAge.Round(time.Millisecond), state, w.LockedJobs)
	}
	return tw.Flush()
}

func sweepCommand() *command {
	return &command{
		name:     "sweep",
		synopsis: "[--dry-run] [--threshold DURATION] [--delay DURATION] [--action ACTION] [--foreign] [--json]",
		summary:  "recover the jobs of dead gworker workers now",
		help: `
Does now what running workers do every sweep interval: finds the gworker
workers whose last heartbeat is older than the threshold (default 5m, or
twice the worker's own heartbeat interval if longer) and, in one
transaction, hands their jobs back to the queue (attempt not counted, not
before --delay from now, last_error saying the worker died), unlocks their
named queues and removes them from the registry. Jobs flagged
gworker:resilient wait three times the threshold. Locks held by workers that
never registered (graphile-worker's) are left to graphile-worker's 4-hour
rule unless --foreign is given, which frees those older than the threshold.
If a sweep runs elsewhere, it waits for it.

With --dry-run nothing changes: it prints what a sweep would do. It prints
the dead workers, the jobs freed and the queues unlocked; with --json one
JSON object with the keys dry_run, worker_ids, removed_worker_ids,
foreign_worker_ids, job_ids, jobs, skipped_job_ids (the jobs a
BeforeRecover hook left locked) and queues, every list an array: the same
object as the admin API's sweep answers.`,
		setup: func(fs *flagSet) action {
			var o core.SweepOptions
			asJSON := false
			fs.flag(&boolValue{p: &o.DryRun}, "", "change nothing; print what a sweep would do", "dry-run")
			registerPolicy(fs, &o.SweepPolicy, policyFlags{threshold: "threshold", delay: "delay", action: "action", foreign: "foreign"})
			fs.flag(&boolValue{p: &asJSON}, "", "print JSON", "json")
			return func(ctx context.Context, e *env, args []string) error {
				if len(args) > 0 {
					return usagef("sweep takes no arguments, got %q", args[0])
				}
				o.SweepPolicy = corePolicy(o.SweepPolicy)
				return sweep(ctx, e, fs.opts, o, asJSON)
			}
		},
	}
}

func sweep(ctx context.Context, e *env, opts *commonFlags, o core.SweepOptions, asJSON bool) error {
	u, closeDB, err := openUtils(ctx, e, opts)
	if err != nil {
		return err
	}
	defer closeDB()
	res, err := u.SweepStaleWorkers(ctx, o)
	if err != nil {
		return err
	}
	if asJSON {
		// core.SweepResult's one encoding, as the admin API's sweep answers.
		b, err := json.Marshal(res)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(e.stdout, "%s\n", b)
		return err
	}
	var b strings.Builder
	if o.DryRun {
		b.WriteString("dry run, nothing changed; a sweep would do this:\n")
	}
	list := func(ss []string) string {
		if len(ss) == 0 {
			return ""
		}
		return " (" + strings.Join(ss, ", ") + ")"
	}
	fmt.Fprintf(&b, "dead workers: %d%s\n", len(res.WorkerIDs), list(res.WorkerIDs))
	if o.SweepForeignLocks {
		fmt.Fprintf(&b, "unregistered lock holders: %d%s\n", len(res.ForeignWorkerIDs), list(res.ForeignWorkerIDs))
	}
	ids := make([]string, len(res.JobIDs))
	for i, id := range res.JobIDs {
		ids[i] = strconv.FormatInt(id, 10)
	}
	fmt.Fprintf(&b, "jobs freed: %d%s\n", res.Jobs, list(ids))
	fmt.Fprintf(&b, "queues unlocked: %d\n", res.Queues)
	fmt.Fprintf(&b, "workers removed from the registry: %d%s\n", len(res.RemovedWorkerIDs), list(res.RemovedWorkerIDs))
	_, err = fmt.Fprint(e.stdout, b.String())
	return err
}

// openUtils connects and returns a client on the schema, and a function
// closing the connection.
func openUtils(ctx context.Context, e *env, opts *commonFlags) (*core.Utils, func(), error) {
	db, err := opts.open(ctx, e)
	if err != nil {
		return nil, nil, err
	}
	u, err := core.NewUtils(db, core.UtilsOptions{Schema: opts.schemaName(e), Logger: opts.logger(e, slog.LevelWarn)})
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return u, func() { db.Close() }, nil
}
