package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gworker/gworker/internal/testkit"
)

// storedJob is a job read straight from the tables.
type storedJob struct {
	task, payload, flags   string
	queue, key, lastError  *string
	priority, attempts     int
	maxAttempts, revision  int
	runAt                  time.Time
	locked                 bool
	runAtInFuture, present bool
}

func (b *bundle) job(t *testing.T, id int64) storedJob {
	t.Helper()
	var j storedJob
	rows, err := b.pool.Query(b.ctx, b.sql(`
select t.identifier, j.payload::text, coalesce(j.flags::text, ''), q.queue_name, j.key, j.last_error,
       j.priority, j.attempts, j.max_attempts, j.revision, j.run_at, j.locked_at is not null, j.run_at > now()
from S._private_jobs j
join S._private_tasks t on t.id = j.task_id
left join S._private_job_queues q on q.id = j.job_queue_id
where j.id = $1`), id)
	if err != nil {
		t.Fatalf("read job %d: %v", id, err)
	}
	defer rows.Close()
	if rows.Next() {
		j.present = true
		if err := rows.Scan(&j.task, &j.payload, &j.flags, &j.queue, &j.key, &j.lastError,
			&j.priority, &j.attempts, &j.maxAttempts, &j.revision, &j.runAt, &j.locked, &j.runAtInFuture); err != nil {
			t.Fatalf("read job %d: %v", id, err)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("read job %d: %v", id, err)
	}
	return j
}

// addedJob is the JSON gworker add prints.
type addedJob struct {
	ID             int64           `json:"id"`
	TaskIdentifier string          `json:"task_identifier"`
	QueueName      *string         `json:"queue_name"`
	Payload        json.RawMessage `json:"payload"`
	Priority       int             `json:"priority"`
	RunAt          time.Time       `json:"run_at"`
	Attempts       int             `json:"attempts"`
	MaxAttempts    int             `json:"max_attempts"`
	Key            *string         `json:"key"`
	Flags          []string        `json:"flags"`
	Revision       int             `json:"revision"`
	LastError      *string         `json:"last_error"`
	LockedAt       *time.Time      `json:"locked_at"`
}

func (b *bundle) add(t *testing.T, args ...string) addedJob {
	t.Helper()
	r := b.cli(t, append([]string{"add"}, args...)...)
	if r.code != 0 {
		t.Fatalf("add %q: exit %d, stderr: %s", args, r.code, r.stderr)
	}
	if strings.Count(r.stdout, "\n") != 1 {
		t.Errorf("add printed %q, want one line", r.stdout)
	}
	if keys := testkit.JSONKeys(t, []byte(r.stdout)); !slices.Equal(keys, testkit.JobJSONKeys) {
		t.Errorf("add printed the keys %q, want %q", keys, testkit.JobJSONKeys)
	}
	var j addedJob
	if err := json.Unmarshal([]byte(r.stdout), &j); err != nil {
		t.Fatalf("add printed %q: %v", r.stdout, err)
	}
	if j.ID == 0 {
		t.Fatalf("add printed no id: %s", r.stdout)
	}
	return j
}

func TestAddWithEveryFlagStoresThem(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.migrate(t)
	runAt := time.Now().Add(time.Hour).UTC().Truncate(time.Millisecond)
	out := b.add(t, "send_email", `{"to": "a@example.com", "n": 7}`,
		"--queue", "mail", "--run-at", runAt.Format(time.RFC3339Nano), "--max-attempts", "3",
		"--key", "welcome-a", "--key-mode", "preserve_run_at", "--priority", "-5",
		"--flag", "slow", "--flag", "smtp")

	got := b.job(t, out.ID)
	if !got.present {
		t.Fatalf("job %d not in the table", out.ID)
	}
	if got.task != "send_email" || got.queue == nil || *got.queue != "mail" || got.key == nil || *got.key != "welcome-a" ||
		got.priority != -5 || got.maxAttempts != 3 || got.attempts != 0 || got.locked || !got.runAt.Equal(runAt) {
		t.Errorf("stored job = %+v (queue %v, key %v); want send_email in mail, key welcome-a, priority -5, max 3, run_at %v",
			got, deref(got.queue), deref(got.key), runAt)
	}
	var payload map[string]any
	if err := json.Unmarshal([]byte(got.payload), &payload); err != nil || payload["to"] != "a@example.com" || payload["n"] != 7.0 {
		t.Errorf("stored payload %s, want to=a@example.com n=7 (%v)", got.payload, err)
	}
	var flags map[string]bool
	if err := json.Unmarshal([]byte(got.flags), &flags); err != nil || len(flags) != 2 || !flags["slow"] || !flags["smtp"] {
		t.Errorf("stored flags %s, want slow and smtp (%v)", got.flags, err)
	}

	// The printed job matches the row.
	if out.TaskIdentifier != "send_email" || deref(out.QueueName) != "mail" || deref(out.Key) != "welcome-a" ||
		out.Priority != -5 || out.MaxAttempts != 3 || out.Attempts != 0 || !out.RunAt.Equal(runAt) ||
		!slices.Equal(out.Flags, []string{"slow", "smtp"}) || out.LastError != nil || out.LockedAt != nil {
		t.Errorf("printed job = %+v", out)
	}
	var printed map[string]any
	if err := json.Unmarshal(out.Payload, &printed); err != nil || printed["to"] != "a@example.com" {
		t.Errorf("printed payload %s (%v)", out.Payload, err)
	}
}

func TestAddDefaults(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.migrate(t)
	out := b.add(t, "resize_image")
	got := b.job(t, out.ID)
	if got.task != "resize_image" || got.payload != "{}" || got.queue != nil || got.key != nil || got.flags != "" ||
		got.priority != 0 || got.maxAttempts != 25 || got.attempts != 0 || got.runAtInFuture {
		t.Errorf("stored job = %+v; want payload {}, no queue, key or flags, priority 0, max 25, runnable now", got)
	}
	if string(out.Payload) != "{}" || out.QueueName != nil || out.Key != nil || out.Flags == nil || len(out.Flags) != 0 {
		t.Errorf("printed job = %+v; want payload {}, null queue_name and key, and flags []", out)
	}
}

func TestAddJobKeyModes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.migrate(t)
	first := b.add(t, "digest", `[1]`, "--key", "k")
	replaced := b.add(t, "digest", `[2]`, "--key", "k")
	if replaced.ID != first.ID || replaced.Revision != 1 || string(replaced.Payload) != "[1,2]" {
		t.Errorf("replace: got id %d revision %d payload %s; want id %d, revision 1, payload [1,2] (arrays concatenate)",
			replaced.ID, replaced.Revision, replaced.Payload, first.ID)
	}
	kept := b.add(t, "digest", `[3]`, "--key", "k", "--key-mode", "unsafe_dedupe")
	if kept.ID != first.ID || string(kept.Payload) != "[1,2]" {
		t.Errorf("unsafe_dedupe: got id %d payload %s; want the existing job unchanged", kept.ID, kept.Payload)
	}
	if got := b.job(t, first.ID); got.payload != "[1, 2]" && got.payload != "[1,2]" {
		t.Errorf("stored payload %s, want [1,2]", got.payload)
	}
	if n := b.count(t, "select count(*) from S._private_jobs"); n != 1 {
		t.Errorf("%d jobs, want 1", n)
	}
}

func TestAddRejectsBadInput(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.migrate(t)
	long := strings.Repeat("q", 129)
	tests := []struct {
		args []string
		want []string // in the one-line error
	}{
		{[]string{"t", "--run-at", "tomorrow"}, []string{"--run-at", `"tomorrow"`, "RFC 3339"}},
		{[]string{"t", "--priority", "x"}, []string{"--priority", `"x"`}},
		{[]string{"t", "--priority", "40000"}, []string{"--priority", "32767"}},
		{[]string{"t", "--max-attempts", "0"}, []string{"--max-attempts"}},
		{[]string{"t", "--key", "k", "--key-mode", "overwrite"}, []string{"--key-mode", `"overwrite"`, "unsafe_dedupe"}},
		{[]string{"t", "--key-mode", "replace"}, []string{"--key-mode", "--key"}},
		{[]string{"t", "--flag", ""}, []string{"--flag"}},
		{[]string{"t", "--queue", long}, []string{"--queue", "128"}},
		{[]string{"t", "{not json"}, []string{"JSON payload", "{not json"}},
		{[]string{"t", "{}", "extra"}, []string{"too many arguments"}},
		{[]string{}, []string{"IDENTIFIER"}},
		{[]string{strings.Repeat("i", 129)}, []string{"IDENTIFIER", "128"}},
	}
	for _, tt := range tests {
		r := b.cli(t, append([]string{"add"}, tt.args...)...)
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			assertOneLineError(t, r, tt.want...)
		})
	}
	if n := b.count(t, "select count(*) from S._private_jobs"); n != 0 {
		t.Errorf("bad input added %d jobs", n)
	}
}

func TestAddToMissingSchemaSaysToMigrate(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.cli(t, "add", "t")
	assertOneLineError(t, r, b.schema, "gworker migrate")
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}
