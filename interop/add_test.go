package interop_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gworker/gworker/core"
)

// addStep is one step of an add scenario: a job added through the adder
// under test, or a statement that puts the jobs in some state (locked,
// attempted, failed) the way a worker would have.
type addStep struct {
	Op         string          `json:"op"` // "add" or "sql"
	Identifier string          `json:"identifier,omitempty"`
	Payload    json.RawMessage `json:"payload,omitempty"`
	Spec       addSpec         `json:"spec"`
	Text       string          `json:"text,omitempty"` // "S." stands for the schema
}

// addSpec is graphile-worker's TaskSpec, as JSON; empty fields are left out
// so that each side applies its own defaults.
type addSpec struct {
	QueueName   string   `json:"queueName,omitempty"`
	RunAt       string   `json:"runAt,omitempty"`
	MaxAttempts int      `json:"maxAttempts,omitempty"`
	JobKey      string   `json:"jobKey,omitempty"`
	JobKeyMode  string   `json:"jobKeyMode,omitempty"`
	Priority    *int     `json:"priority,omitempty"`
	Flags       []string `json:"flags,omitempty"`
}

func add(identifier, payload string, spec addSpec) addStep {
	return addStep{Op: "add", Identifier: identifier, Payload: json.RawMessage(payload), Spec: spec}
}

func sqlStep(text string) addStep { return addStep{Op: "sql", Text: text} }

func prio(n int) *int { return &n }

// Fixed times, far from the test's own now(), so that explicit run_at
// values compare exactly and defaulted ones (now()) are told apart.
const (
	t2030 = "2030-01-02T03:04:05.678Z"
	t2031 = "2031-06-07T08:09:10.111Z"
	t2032 = "2032-12-31T23:59:59.999Z"
	t2020 = "2020-02-29T12:00:00Z"
)

// addScenario covers every field of a job spec and every job key mode, with
// the key's holder waiting, attempted, running and permanently failed.
var addScenario = []addStep{
	// Defaults, then every field set.
	add("plain", `{}`, addSpec{}),
	add("plain", `{"n": 1, "nested": {"a": [1, "two", null, true]}, "s": "é\"\\"}`, addSpec{
		QueueName: "q-full", RunAt: t2030, MaxAttempts: 3, Priority: prio(-5), Flags: []string{"b", "a"},
	}),
	add("plain", `{"n": 2}`, addSpec{RunAt: t2020, Priority: prio(7), MaxAttempts: 32767}),
	add("plain", `[1, 2]`, addSpec{QueueName: "q-full"}),

	// replace: a waiting holder is overwritten field by field.
	add("first", `{"v": 1}`, addSpec{JobKey: "r", QueueName: "q1", RunAt: t2030, Priority: prio(1), Flags: []string{"x"}}),
	add("second", `{"v": 2}`, addSpec{JobKey: "r", QueueName: "q2", RunAt: t2031, Priority: prio(2), MaxAttempts: 7, Flags: []string{"y", "z"}}),
	add("second", `{"v": 3}`, addSpec{JobKey: "r", JobKeyMode: "replace"}),
	// replace concatenates array payloads.
	add("batch", `[1]`, addSpec{JobKey: "arr"}),
	add("batch", `[2, 3]`, addSpec{JobKey: "arr"}),
	add("batch", `{"not": "an array"}`, addSpec{JobKey: "arr2"}),
	add("batch", `[4]`, addSpec{JobKey: "arr2"}),

	// preserve_run_at keeps run_at while the holder has not been attempted.
	add("debounce", `{"v": 1}`, addSpec{JobKey: "p", JobKeyMode: "preserve_run_at", RunAt: t2030}),
	add("debounce", `{"v": 2}`, addSpec{JobKey: "p", JobKeyMode: "preserve_run_at", RunAt: t2031}),
	sqlStep(`update S._private_jobs set attempts = 1, last_error = 'earlier failure' where key = 'p'`),
	add("debounce", `{"v": 3}`, addSpec{JobKey: "p", JobKeyMode: "preserve_run_at", RunAt: t2032}),

	// unsafe_dedupe leaves the holder as it is.
	add("dedupe", `{"v": 1}`, addSpec{JobKey: "u", JobKeyMode: "unsafe_dedupe", RunAt: t2030}),
	add("dedupe", `{"v": 2}`, addSpec{JobKey: "u", JobKeyMode: "unsafe_dedupe", QueueName: "qu", RunAt: t2031, Priority: prio(3)}),
	add("dedupe-new-task", `{"v": 3}`, addSpec{JobKey: "u", JobKeyMode: "unsafe_dedupe"}),

	// A running holder (locked by a worker): replace detaches it and adds a
	// new job; unsafe_dedupe returns it untouched.
	add("locked", `{"v": 1}`, addSpec{JobKey: "l", QueueName: "ql"}),
	add("locked", `{"v": 1}`, addSpec{JobKey: "lu"}),
	sqlStep(`update S._private_jobs set locked_at = now(), locked_by = 'some-worker', attempts = 1 where key in ('l', 'lu')`),
	sqlStep(`update S._private_job_queues set locked_at = now(), locked_by = 'some-worker' where queue_name = 'ql'`),
	add("locked", `{"v": 2}`, addSpec{JobKey: "l", QueueName: "ql"}),
	add("locked", `{"v": 2}`, addSpec{JobKey: "lu", JobKeyMode: "unsafe_dedupe"}),

	// A permanently failed holder is detached too.
	add("failed", `{"v": 1}`, addSpec{JobKey: "f", MaxAttempts: 2}),
	sqlStep(`update S._private_jobs set attempts = 2, last_error = 'boom' where key = 'f'`),
	add("failed", `{"v": 2}`, addSpec{JobKey: "f", JobKeyMode: "preserve_run_at"}),

	// Without a key the mode means nothing: two jobs.
	add("nokey", `{"v": 1}`, addSpec{JobKeyMode: "unsafe_dedupe"}),
	add("nokey", `{"v": 1}`, addSpec{JobKeyMode: "unsafe_dedupe"}),
}

// TestAddsMatchNode runs addScenario through every adder — Node's addJob,
// gworker's AddRawJob, and SQL add_job called from a trigger — on a schema
// migrated by Node and on one migrated by gworker, and requires the jobs
// table each leaves to equal the one Node's addJob leaves on Node's schema,
// row by row and field by field.
func TestAddsMatchNode(t *testing.T) {
	t.Parallel()
	e := setup(t, 3*time.Minute)

	type variant struct{ adder, migrator string }
	var variants []variant
	for _, m := range []string{"node", "go"} {
		for _, a := range []string{"node", "go", "trigger"} {
			variants = append(variants, variant{a, m})
		}
	}
	results := make(map[variant][]string)
	// The reference first, then the others side by side.
	t.Run("reference", func(t *testing.T) {
		results[variants[0]] = e.addAndRead(t, variants[0].adder, variants[0].migrator)
	})
	ref := results[variants[0]]
	if len(ref) == 0 {
		t.Fatal("the reference run left no jobs")
	}
	t.Run("variants", func(t *testing.T) {
		for _, v := range variants[1:] {
			t.Run(v.adder+"-adds-on-"+v.migrator+"-schema", func(t *testing.T) {
				t.Parallel()
				got := e.addAndRead(t, v.adder, v.migrator)
				if d := diffRows(ref, got); d != "" {
					t.Errorf("jobs after the scenario differ from Node's addJob on Node's schema:\n%s", d)
				}
			})
		}
	})
}

// addAndRead migrates a fresh schema with migrator, runs addScenario
// through adder and returns the jobs it left.
func (e *env) addAndRead(t *testing.T, adder, migrator string) []string {
	t.Helper()
	schema := schemaName()
	if migrator == "node" {
		e.nodeMigrate(t, schema, "", 0)
	} else {
		e.goMigrate(t, schema)
	}
	steps := make([]addStep, len(addScenario))
	for i, s := range addScenario {
		s.Text = strings.ReplaceAll(s.Text, "S.", q(schema)+".")
		steps[i] = s
	}
	switch adder {
	case "node":
		e.runAgent(t, "add", map[string]any{"schema": schema, "steps": steps})
	case "go":
		u := e.utils(t, schema)
		for i, s := range steps {
			if s.Op == "sql" {
				e.exec(t, s.Text)
				continue
			}
			spec := &core.JobSpec{QueueName: s.Spec.QueueName, MaxAttempts: s.Spec.MaxAttempts, JobKey: s.Spec.JobKey,
				JobKeyMode: core.JobKeyMode(s.Spec.JobKeyMode), Flags: s.Spec.Flags}
			if spec.JobKey == "" {
				// Node ignores a mode without a key; gworker's AddRawJob
				// rejects it as a mistake, by design, before any SQL runs.
				spec.JobKeyMode = ""
			}
			if s.Spec.Priority != nil {
				spec.Priority = *s.Spec.Priority
			}
			if s.Spec.RunAt != "" {
				at, err := time.Parse(time.RFC3339Nano, s.Spec.RunAt)
				if err != nil {
					t.Fatal(err)
				}
				spec.RunAt = at
			}
			if _, err := u.AddRawJob(e.ctx, s.Identifier, s.Payload, spec); err != nil {
				t.Fatalf("step %d: AddRawJob: %v", i, err)
			}
		}
	case "trigger":
		// An application's table whose trigger adds a job per row: the
		// usual way SQL adds jobs.
		app := schemaName()
		e.exec(t, fmt.Sprintf(`create schema %[1]s;
			create table %[1]s.adds (identifier text, payload json, queue_name text, run_at timestamptz,
				max_attempts int, job_key text, priority int, flags text[], job_key_mode text);
			create function %[1]s.add_from_row() returns trigger language plpgsql as $$
			begin
				perform %[2]s.add_job(new.identifier, new.payload, new.queue_name, new.run_at, new.max_attempts,
					new.job_key, new.priority, new.flags, coalesce(new.job_key_mode, 'replace'));
				return new;
			end $$;
			create trigger add_job after insert on %[1]s.adds for each row execute function %[1]s.add_from_row()`,
			q(app), q(schema)))
		for _, s := range steps {
			if s.Op == "sql" {
				e.exec(t, s.Text)
				continue
			}
			var runAt *string
			if s.Spec.RunAt != "" {
				runAt = &s.Spec.RunAt
			}
			e.exec(t, "insert into "+q(app)+".adds values ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
				s.Identifier, string(s.Payload), nullIfEmpty(s.Spec.QueueName), runAt, nullIfZero(s.Spec.MaxAttempts),
				nullIfEmpty(s.Spec.JobKey), s.Spec.Priority, s.Spec.Flags, nullIfEmpty(s.Spec.JobKeyMode))
		}
	}
	return e.jobRows(t, schema)
}

func nullIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func nullIfZero(n int) *int {
	if n == 0 {
		return nil
	}
	return &n
}

// jobRows describes every job of schema, in id order, one line each, field
// by field. Times that came from now() (within ten minutes of it) show as
// "now", explicit ones exactly; updated_at is shown by whether it moved past
// created_at, which is what a replace must do.
func (e *env) jobRows(t *testing.T, schema string) []string {
	t.Helper()
	rows, err := e.pool.Query(e.ctx, fmt.Sprintf(`
		select format('id=%%s task=%%s queue=%%s payload=%%s priority=%%s run_at=%%s attempts=%%s max_attempts=%%s last_error=%%s key=%%s locked=%%s locked_by=%%s revision=%%s flags=%%s available=%%s updated=%%s',
			j.id, t.identifier, coalesce(qu.queue_name, '(null)'), j.payload::jsonb, j.priority,
			case when abs(extract(epoch from j.run_at - now())) < 600 then 'now'
			     else to_char(j.run_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') end,
			j.attempts, j.max_attempts, coalesce(j.last_error, '(null)'), coalesce(j.key, '(null)'),
			j.locked_at is not null, coalesce(j.locked_by, '(null)'), j.revision, coalesce(j.flags::text, '(null)'),
			j.is_available, case when j.updated_at > j.created_at then 'later' else 'at-creation' end)
		from %[1]s._private_jobs j
		join %[1]s._private_tasks t on t.id = j.task_id
		left join %[1]s._private_job_queues qu on qu.id = j.job_queue_id
		order by j.id`, q(schema)))
	if err != nil {
		t.Fatalf("read jobs of %s: %v", schema, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("read jobs of %s: %v", schema, err)
	}
	return out
}

// diffRows compares two job listings position by position.
func diffRows(want, got []string) string {
	var b strings.Builder
	for i := range max(len(want), len(got)) {
		var w, g string
		if i < len(want) {
			w = want[i]
		}
		if i < len(got) {
			g = got[i]
		}
		if w != g {
			fmt.Fprintf(&b, "row %d:\n  want %s\n  got  %s\n", i+1, w, g)
		}
	}
	return b.String()
}
