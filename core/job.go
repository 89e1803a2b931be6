package core

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"time"
	"unicode/utf8"
)

// Limits and defaults of the graphile-worker schema.
const (
	// DefaultMaxAttempts is how many times a job is tried unless its spec
	// says otherwise.
	DefaultMaxAttempts = 25
	// MaxIdentifierLength is the longest task identifier the schema accepts.
	MaxIdentifierLength = 128
	// MaxQueueNameLength is the longest queue name the schema accepts.
	MaxQueueNameLength = 128
	// MaxJobKeyLength is the longest job key the schema accepts.
	MaxJobKeyLength = 512
)

// JobKeyMode says what adding a job does when another job has the same key.
type JobKeyMode string

const (
	// Replace (the default) overwrites a waiting job with the same key:
	// payload, run_at, queue, priority, max attempts and flags are replaced
	// and its attempts reset. A job holding the key that is running or
	// permanently failed keeps running (or stays failed) but gives up the key,
	// and a new job is added.
	Replace JobKeyMode = "replace"
	// PreserveRunAt is Replace, except that run_at is kept when the existing
	// job has not been attempted yet. Use it for debouncing.
	PreserveRunAt JobKeyMode = "preserve_run_at"
	// UnsafeDedupe leaves an existing job with the key untouched, whatever
	// its state (even locked or permanently failed), and returns it.
	UnsafeDedupe JobKeyMode = "unsafe_dedupe"
)

// JobSpec holds the optional settings of a job being added. The zero value
// means: no queue (runs in parallel), run now, DefaultMaxAttempts, priority
// 0, no key, no flags.
type JobSpec struct {
	// QueueName puts the job in a named queue: jobs of one queue run one at a
	// time, in order, across all workers. "" means no queue.
	QueueName string
	// RunAt is the earliest time the job may run; zero means now (the
	// database's clock).
	RunAt time.Time
	// MaxAttempts is how many times the job is tried; 0 means
	// DefaultMaxAttempts. At most 32767.
	MaxAttempts int
	// Priority orders runnable jobs: a lower number runs first, and it may
	// be negative. -32768..32767.
	Priority int
	// JobKey identifies the job for replacement or removal (see JobKeyMode).
	// "" means no key.
	JobKey string
	// JobKeyMode applies when JobKey is set; "" means Replace.
	JobKeyMode JobKeyMode
	// Flags are stored with the job; workers can be told to skip jobs
	// carrying some of them (forbidden flags), e.g. to pause or rate-limit.
	Flags []string
}

// Job is a row of the jobs table, with its task identifier and queue name.
type Job struct {
	ID             int64
	QueueName      string // "" when the job has no queue
	TaskIdentifier string
	Payload        json.RawMessage
	Priority       int
	RunAt          time.Time
	Attempts       int
	MaxAttempts    int
	LastError      *string // nil until the job has failed
	CreatedAt      time.Time
	UpdatedAt      time.Time
	Key            string     // "" when the job has no key
	LockedAt       *time.Time // nil unless a worker holds the job
	LockedBy       string     // the holding worker's id, "" when unlocked
	Revision       int
	Flags          []string // sorted; nil when none

	taskID     int32
	jobQueueID *int32
}

// TaskPayload is implemented by payload types of typed tasks: the identifier
// names the task that runs them. Implement it on the value type.
//
//	type SendEmail struct{ To string `json:"to"` }
//	func (SendEmail) TaskIdentifier() string { return "send_email" }
type TaskPayload interface {
	TaskIdentifier() string
}

// NewJob is one job for AddJobs.
type NewJob struct {
	Identifier string
	// Payload is encoded with encoding/json; json.RawMessage and []byte are
	// taken as JSON text as they are; nil means {}.
	Payload any
	Spec    JobSpec
}

// checkIdentifier validates a task identifier. Lengths are counted in
// characters, as the schema's check constraints (length()) count them.
func checkIdentifier(field, id string) error {
	switch n := utf8.RuneCountInString(id); {
	case id == "":
		return &ValidationError{Field: field, Reason: "must not be empty"}
	case n > MaxIdentifierLength:
		return &ValidationError{Field: field, Value: id, Reason: fmt.Sprintf("is %d characters long; at most %d are allowed", n, MaxIdentifierLength)}
	}
	return nil
}

// validate checks the spec against the schema's limits before any SQL runs;
// field names the spec in errors ("JobSpec", "jobs[3].Spec"). Lengths are
// counted in characters, as PostgreSQL's length() counts them.
func (s *JobSpec) validate(field string) error {
	if n := utf8.RuneCountInString(s.QueueName); n > MaxQueueNameLength {
		return &ValidationError{Field: field + ".QueueName", Value: s.QueueName, Reason: fmt.Sprintf("is %d characters long; at most %d are allowed", n, MaxQueueNameLength)}
	}
	if s.MaxAttempts < 0 || s.MaxAttempts > math.MaxInt16 {
		return &ValidationError{Field: field + ".MaxAttempts", Value: s.MaxAttempts, Reason: fmt.Sprintf("must be between 1 and %d (0 means the default, %d)", math.MaxInt16, DefaultMaxAttempts)}
	}
	if s.Priority < math.MinInt16 || s.Priority > math.MaxInt16 {
		return &ValidationError{Field: field + ".Priority", Value: s.Priority, Reason: fmt.Sprintf("must be between %d and %d", math.MinInt16, math.MaxInt16)}
	}
	if n := utf8.RuneCountInString(s.JobKey); n > MaxJobKeyLength {
		return &ValidationError{Field: field + ".JobKey", Value: s.JobKey, Reason: fmt.Sprintf("is %d characters long; at most %d are allowed", n, MaxJobKeyLength)}
	}
	switch s.JobKeyMode {
	case "", Replace, PreserveRunAt, UnsafeDedupe:
	default:
		return &ValidationError{Field: field + ".JobKeyMode", Value: string(s.JobKeyMode), Reason: `must be "replace", "preserve_run_at" or "unsafe_dedupe"`}
	}
	if s.JobKeyMode != "" && s.JobKey == "" {
		return &ValidationError{Field: field + ".JobKeyMode", Value: string(s.JobKeyMode), Reason: "needs a job key"}
	}
	for i, f := range s.Flags {
		if f == "" {
			return &ValidationError{Field: fmt.Sprintf("%s.Flags[%d]", field, i), Reason: "must not be empty"}
		}
	}
	return nil
}

// encodePayload turns a payload into JSON text.
func encodePayload(field string, v any) (json.RawMessage, error) {
	switch p := v.(type) {
	case nil:
		return json.RawMessage("{}"), nil
	case json.RawMessage:
		if !json.Valid(p) {
			return nil, &ValidationError{Field: field, Reason: "is not valid JSON"}
		}
		return p, nil
	case []byte:
		if !json.Valid(p) {
			return nil, &ValidationError{Field: field, Reason: "is not valid JSON"}
		}
		return json.RawMessage(p), nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, &ValidationError{Field: field, Reason: "cannot be encoded as JSON: " + err.Error()}
	}
	return b, nil
}

// jobColumns lists the _private_jobs columns scanned into a Job, qualified by
// the alias j. Keep in step with scanJob.
const jobColumns = "j.id, j.job_queue_id, j.task_id, j.payload, j.priority, j.run_at, j.attempts, j.max_attempts," +
	" j.last_error, j.created_at, j.updated_at, j.key, j.locked_at, j.locked_by, j.revision, j.flags"

// scanJob reads one row of jobColumns, and then any extra columns into
// extra. Task identifier and queue name are filled in later from their ids.
func scanJob(rows Rows, extra ...any) (*Job, error) {
	return newJobScanner(extra...).scan(rows, new(Job))
}

// jobScanner reads rows of jobColumns into jobs. One scanner serves a whole
// result: its destinations are set up once, so that a row costs the job
// and the values the driver copies, not a dozen boxed temporaries (the
// fetch reads up to a thousand rows at a time).
type jobScanner struct {
	row                             Job
	priority, attempts, maxAttempts int16
	revision                        int32
	key, lockedBy                   *string
	payload, flags                  []byte
	dest                            []any
}

func newJobScanner(extra ...any) *jobScanner {
	s := &jobScanner{}
	s.dest = append([]any{&s.row.ID, &s.row.jobQueueID, &s.row.taskID, &s.payload, &s.priority, &s.row.RunAt,
		&s.attempts, &s.maxAttempts, &s.row.LastError, &s.row.CreatedAt, &s.row.UpdatedAt, &s.key,
		&s.row.LockedAt, &s.lockedBy, &s.revision, &s.flags}, extra...)
	return s
}

// scan reads the current row into j. Drivers copy what they hand out
// (the payload's bytes, strings), so nothing j keeps is reused by the
// next row.
func (s *jobScanner) scan(rows Rows, j *Job) (*Job, error) {
	s.row, s.key, s.lockedBy, s.payload, s.flags = Job{}, nil, nil, nil, nil
	if err := rows.Scan(s.dest...); err != nil {
		return nil, err
	}
	*j = s.row
	j.Payload = s.payload
	j.Priority, j.Attempts, j.MaxAttempts, j.Revision = int(s.priority), int(s.attempts), int(s.maxAttempts), int(s.revision)
	if s.key != nil {
		j.Key = *s.key
	}
	if s.lockedBy != nil {
		j.LockedBy = *s.lockedBy
	}
	if len(s.flags) > 0 {
		var m map[string]any
		if err := json.Unmarshal(s.flags, &m); err != nil {
			return nil, fmt.Errorf("gworker: job %d has unreadable flags %s: %w", j.ID, s.flags, err)
		}
		for f := range m {
			j.Flags = append(j.Flags, f)
		}
		slices.Sort(j.Flags)
	}
	return j, nil
}
