package core

import (
	"context"
	"errors"
	"time"
)

// RecoveryInfo is what a sweep knows about a job it is about to free, as
// BeforeRecover hooks see it.
type RecoveryInfo struct {
	// WorkerID is the dead worker holding the job (Job.LockedBy).
	WorkerID string
	// LastHeartbeatAt is the dead worker's last heartbeat, on the
	// database's clock; zero for an unregistered locker (Foreign).
	LastHeartbeatAt time.Time
	// Foreign says the locker never registered (a graphile-worker worker,
	// or a gworker worker with recovery disabled): the sweep frees its
	// lock because SweepForeignLocks is on and locked_at is old enough.
	Foreign bool
	// Action is what the sweep does with the job unless the hook decides
	// otherwise.
	Action RecoveryAction
	// Delay is how long a job the sweep returns (RecoveryReturn) waits
	// before it may run again.
	Delay time.Duration
	// DryRun says the sweep will be rolled back: nothing it decides
	// happens.
	DryRun bool
}

// RecoveryDecision is what a BeforeRecover hook returns: RecoverByDefault,
// RecoverReschedule, RecoverFailWithBackoff or RecoverSkip. The zero value
// is RecoverByDefault.
type RecoveryDecision struct {
	action RecoveryAction // "" for the sweep's own
	at     time.Time
}

// recoveryReschedule is the per-job action of RecoverReschedule; a sweep
// as a whole cannot have it.
const recoveryReschedule RecoveryAction = "reschedule"

// RecoverByDefault leaves the job to the sweep's RecoveryAction.
func RecoverByDefault() RecoveryDecision { return RecoveryDecision{} }

// RecoverReschedule hands the job back unlocked, with the attempt not
// counted, to run at at; the zero time means at once.
func RecoverReschedule(at time.Time) RecoveryDecision {
	return RecoveryDecision{action: recoveryReschedule, at: at}
}

// RecoverFailWithBackoff counts the attempt as failed, as
// RecoveryFailWithBackoff does.
func RecoverFailWithBackoff() RecoveryDecision {
	return RecoveryDecision{action: RecoveryFailWithBackoff}
}

// RecoverSkip leaves the job locked by the dead worker, as RecoverySkip
// does; the next sweep asks again.
func RecoverSkip() RecoveryDecision { return RecoveryDecision{action: RecoverySkip} }

func (d RecoveryDecision) String() string {
	switch d.action {
	case "":
		return "default"
	case recoveryReschedule:
		if d.at.IsZero() {
			return "reschedule now"
		}
		return "reschedule at " + d.at.UTC().Format(time.RFC3339Nano)
	}
	return string(d.action)
}

// beforeRecover asks the BeforeRecover hooks about one job: the first
// decision other than the default wins.
func (h *hookSet) beforeRecover(ctx context.Context, job *Job, info RecoveryInfo) RecoveryDecision {
	for _, b := range h.beforeRecov {
		var d RecoveryDecision
		if h.guard(b.name, "BeforeRecover", func() { d = b.fn(ctx, job, info) }) {
			continue
		}
		if d.action != "" {
			return d
		}
	}
	return RecoveryDecision{}
}

// recoveryDecisions are the BeforeRecover hooks' answers for the jobs of
// one sweep, as the sweep statement's parameters $9 to $11.
type recoveryDecisions struct {
	ids     []int64
	actions []string
	runAt   []string
	skipped []int64
}

// noRecoveryDecisions is the empty list. Its arrays are empty, not nil: the
// Database contract says how drivers send an empty slice, not a nil one.
func noRecoveryDecisions() recoveryDecisions {
	return recoveryDecisions{ids: []int64{}, actions: []string{}, runAt: []string{}}
}

// askRecoveryHooks reads the jobs the sweep would free, locking them until
// it commits, and asks the BeforeRecover hooks about each. Jobs the hooks
// leave to the sweep's action are listed with that action, so that the
// sweep frees exactly the jobs the hooks were asked about.
func (u *Utils) askRecoveryHooks(ctx context.Context, ex Executor, s *recoverySQL, o SweepOptions, dead, expired []string) (recoveryDecisions, error) {
	d := noRecoveryDecisions()
	rows, err := ex.Query(ctx, s.heldJobs, dead, expired, o.SweepForeignLocks, o.StaleThreshold.Seconds(),
		float64(o.ResilientMultiplier), ResilientFlag)
	if err != nil {
		return d, err
	}
	type held struct {
		job       *Job
		heartbeat *time.Time
	}
	var jobs []held
	for rows.Next() {
		var (
			task      string
			queue     *string
			heartbeat *time.Time
		)
		j, err := scanJob(rows, &task, &queue, &heartbeat)
		if err != nil {
			rows.Close()
			return d, err
		}
		j.TaskIdentifier = task
		if queue != nil {
			j.QueueName = *queue
		}
		jobs = append(jobs, held{j, heartbeat})
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return d, err
	}
	// Rows are read to the end first: the transaction's one connection is
	// then free again, should a hook's context carry it.
	for _, h := range jobs {
		info := RecoveryInfo{WorkerID: h.job.LockedBy, Foreign: h.heartbeat == nil, Action: o.Action, Delay: o.Delay, DryRun: o.DryRun}
		if h.heartbeat != nil {
			info.LastHeartbeatAt = *h.heartbeat
		}
		dec := u.hooks.beforeRecover(ctx, h.job, info)
		action := dec.action
		if action == "" {
			action = o.Action
		}
		runAt := ""
		if action == recoveryReschedule && !dec.at.IsZero() {
			runAt = dec.at.UTC().Format(time.RFC3339Nano)
		}
		if action == RecoverySkip {
			d.skipped = append(d.skipped, h.job.ID)
		}
		d.ids = append(d.ids, h.job.ID)
		d.actions = append(d.actions, string(action))
		d.runAt = append(d.runAt, runAt)
	}
	return d, nil
}

// recovers reports whether a BeforeRecover hook is registered.
func (h *hookSet) recovers() bool { return h != nil && len(h.beforeRecov) > 0 }
