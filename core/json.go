package core

import (
	"encoding/json"
	"slices"
	"time"
)

// jobJSON is the JSON form of a Job. Keep its keys in step with the
// MarshalJSON documentation below.
type jobJSON struct {
	ID             int64           `json:"id"`
	QueueName      *string         `json:"queue_name"`
	TaskIdentifier string          `json:"task_identifier"`
	Payload        json.RawMessage `json:"payload"`
	Priority       int             `json:"priority"`
	RunAt          time.Time       `json:"run_at"`
	Attempts       int             `json:"attempts"`
	MaxAttempts    int             `json:"max_attempts"`
	LastError      *string         `json:"last_error"`
	CreatedAt      time.Time       `json:"created_at"`
	UpdatedAt      time.Time       `json:"updated_at"`
	Key            *string         `json:"key"`
	LockedAt       *time.Time      `json:"locked_at"`
	LockedBy       *string         `json:"locked_by"`
	Revision       int             `json:"revision"`
	Flags          []string        `json:"flags"`
	State          JobState        `json:"state"`
}

// MarshalJSON encodes the job as one JSON object whose keys are the
// columns of graphile-worker's jobs view: id, queue_name, task_identifier,
// payload, priority, run_at, attempts, max_attempts, last_error,
// created_at, updated_at, key, locked_at, locked_by, revision and flags,
// followed by state, the job's State at the time of encoding. queue_name,
// key, locked_by, locked_at and last_error are null where the column is
// NULL (the empty string or nil in the Job); times are RFC 3339 in UTC with
// up to nanoseconds; flags is a sorted array of strings, [] when the job
// has none. The gworker command line (--json) and the admin API print
// jobs this way.
func (j Job) MarshalJSON() ([]byte, error) {
	out := jobJSON{
		ID:             j.ID,
		QueueName:      jsonNullString(j.QueueName),
		TaskIdentifier: j.TaskIdentifier,
		Payload:        j.Payload,
		Priority:       j.Priority,
		RunAt:          j.RunAt.UTC(),
		Attempts:       j.Attempts,
		MaxAttempts:    j.MaxAttempts,
		LastError:      j.LastError,
		CreatedAt:      j.CreatedAt.UTC(),
		UpdatedAt:      j.UpdatedAt.UTC(),
		Key:            jsonNullString(j.Key),
		LockedBy:       jsonNullString(j.LockedBy),
		Revision:       j.Revision,
		Flags:          j.Flags,
		State:          j.State(time.Now()),
	}
	if j.LockedAt != nil {
		t := j.LockedAt.UTC()
		out.LockedAt = &t
	}
	if out.Flags == nil {
		out.Flags = []string{}
	}
	if len(out.Payload) == 0 {
		out.Payload = json.RawMessage("null")
	}
	return json.Marshal(out)
}

// UnmarshalJSON decodes what MarshalJSON encodes, into a Job as GetJob
// returns it: null becomes "" or nil, flags are sorted, and an empty flags
// array becomes nil. state is derived from the other fields and ignored.
func (j *Job) UnmarshalJSON(b []byte) error {
	var in jobJSON
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	*j = Job{
		ID:             in.ID,
		QueueName:      stringOrEmpty(in.QueueName),
		TaskIdentifier: in.TaskIdentifier,
		Payload:        in.Payload,
		Priority:       in.Priority,
		RunAt:          in.RunAt,
		Attempts:       in.Attempts,
		MaxAttempts:    in.MaxAttempts,
		LastError:      in.LastError,
		CreatedAt:      in.CreatedAt,
		UpdatedAt:      in.UpdatedAt,
		Key:            stringOrEmpty(in.Key),
		LockedAt:       in.LockedAt,
		LockedBy:       stringOrEmpty(in.LockedBy),
		Revision:       in.Revision,
	}
	if len(in.Flags) > 0 {
		j.Flags = slices.Sorted(slices.Values(in.Flags))
	}
	return nil
}

// sweepResultJSON is the JSON form of a SweepResult.
type sweepResultJSON struct {
	DryRun           bool     `json:"dry_run"`
	WorkerIDs        []string `json:"worker_ids"`
	RemovedWorkerIDs []string `json:"removed_worker_ids"`
	ForeignWorkerIDs []string `json:"foreign_worker_ids"`
	JobIDs           []int64  `json:"job_ids"`
	Jobs             int      `json:"jobs"`
	SkippedJobIDs    []int64  `json:"skipped_job_ids"`
	Queues           int      `json:"queues"`
}

// MarshalJSON encodes the result as one JSON object with the keys
// dry_run, worker_ids, removed_worker_ids, foreign_worker_ids, job_ids,
// jobs, skipped_job_ids and queues: the fields of SweepResult, with every
// list an array ([] when empty, never null). gworker sweep --json and the
// admin API's sweep answer this way.
func (r SweepResult) MarshalJSON() ([]byte, error) {
	return json.Marshal(sweepResultJSON{
		DryRun:           r.DryRun,
		WorkerIDs:        nonNil(r.WorkerIDs),
		RemovedWorkerIDs: nonNil(r.RemovedWorkerIDs),
		ForeignWorkerIDs: nonNil(r.ForeignWorkerIDs),
		JobIDs:           nonNil(r.JobIDs),
		Jobs:             r.Jobs,
		SkippedJobIDs:    nonNil(r.SkippedJobIDs),
		Queues:           r.Queues,
	})
}

// UnmarshalJSON decodes what MarshalJSON encodes; an empty array becomes
// nil.
func (r *SweepResult) UnmarshalJSON(b []byte) error {
	var in sweepResultJSON
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	*r = SweepResult{
		DryRun:           in.DryRun,
		WorkerIDs:        emptyToNil(in.WorkerIDs),
		RemovedWorkerIDs: emptyToNil(in.RemovedWorkerIDs),
		ForeignWorkerIDs: emptyToNil(in.ForeignWorkerIDs),
		JobIDs:           emptyToNil(in.JobIDs),
		Jobs:             in.Jobs,
		SkippedJobIDs:    emptyToNil(in.SkippedJobIDs),
		Queues:           in.Queues,
	}
	return nil
}

func jsonNullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func stringOrEmpty(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func emptyToNil[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return s
}
