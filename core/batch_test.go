package core_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/gworker/gworker/core"
)

type email struct {
	To string `json:"to"`
}

func (email) TaskIdentifier() string { return "email_batch" }

// batchRun records what a batch handler saw.
type batchRun struct {
	mu    sync.Mutex
	calls [][]string
}

func (r *batchRun) seen() [][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]string(nil), r.calls...)
}

// batchTask fails the items whose address starts with "bad".
func (r *batchRun) task(results func(items []email) ([]error, error)) core.Task {
	return core.NewBatchTask(func(_ context.Context, _ *core.Job, items []email) ([]error, error) {
		var tos []string
		for _, it := range items {
			tos = append(tos, it.To)
		}
		r.mu.Lock()
		r.calls = append(r.calls, tos)
		r.mu.Unlock()
		if results != nil {
			return results(items)
		}
		out := make([]error, len(items))
		for i, it := range items {
			if strings.HasPrefix(it.To, "bad") {
				out[i] = fmt.Errorf("cannot send to %s", it.To)
			}
		}
		return out, nil
	})
}

func TestBatchJobs(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name        string
		payload     any
		results     func([]email) ([]error, error)
		wantLeft    string // payload left, "" when the job must be gone
		wantError   []string
		wantHandled [][]string
		permanent   bool // failed for good: attempts = max_attempts
	}{
		{name: "all succeed", payload: []email{{"a"}, {"b"}}, wantHandled: [][]string{{"a", "b"}}},
		{name: "partial failure keeps only failed items", payload: []email{{"a"}, {"bad1"}, {"c"}, {"bad2"}},
			wantLeft: `[{"to":"bad1"},{"to":"bad2"}]`, wantError: []string{"Batch failures", "[1] cannot send to bad1", "[3] cannot send to bad2"},
			wantHandled: [][]string{{"a", "bad1", "c", "bad2"}}},
		{name: "all fail", payload: []email{{"bad1"}, {"bad2"}},
			wantLeft: `[{"to":"bad1"},{"to":"bad2"}]`, wantError: []string{"[0] cannot send to bad1", "[1] cannot send to bad2"}},
		{name: "one error for all", payload: []email{{"a"}, {"b"}}, results: func([]email) ([]error, error) { return nil, errors.New("smtp down") },
			wantLeft: `[{"to":"a"},{"to":"b"}]`, wantError: []string{"smtp down"}},
		{name: "result count mismatch", payload: []email{{"a"}, {"b"}}, results: func([]email) ([]error, error) { return []error{nil}, nil },
			wantLeft: `[{"to":"a"},{"to":"b"}]`, wantError: []string{"returned 1 results for 2 items"}},
		{name: "item that does not decode", payload: []any{map[string]any{"to": "a"}, map[string]any{"to": 42}},
			wantLeft: `[{"to":42}]`, wantError: []string{"[1] item does not decode"}, wantHandled: [][]string{{"a"}}, permanent: true},
		{name: "not an array", payload: map[string]string{"to": "a"}, wantLeft: `{"to":"a"}`, wantError: []string{"must be a JSON array"}, permanent: true},
		{name: "empty array", payload: []any{}, wantLeft: `[]`, wantError: []string{"empty array"}, permanent: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			run := &batchRun{}
			w, _ := b.worker(t, core.WorkerOptions{Tasks: []core.Task{run.task(c.results)}})
			job := b.add(t, "email_batch", c.payload, nil)
			if err := w.RunOnce(b.ctx); err != nil {
				t.Fatal(err)
			}
			if c.wantHandled != nil && fmt.Sprint(run.seen()) != fmt.Sprint(c.wantHandled) {
				t.Fatalf("handler saw %v, want %v", run.seen(), c.wantHandled)
			}
			rows := b.jobs(t)
			if c.wantLeft == "" {
				if len(rows) != 0 {
					t.Fatalf("job left: %+v", rows)
				}
				return
			}
			wantAttempts := int16(1)
			if c.permanent {
				wantAttempts = core.DefaultMaxAttempts
			}
			if len(rows) != 1 || rows[0].ID != job.ID || rows[0].Attempts != wantAttempts || rows[0].LockedBy != nil {
				t.Fatalf("rows = %+v", rows)
			}
			mustJSONEqual(t, rows[0].Payload, c.wantLeft)
			for _, want := range c.wantError {
				if !strings.Contains(deref(rows[0].LastError).(string), want) {
					t.Fatalf("last_error %q lacks %q", deref(rows[0].LastError), want)
				}
			}
		})
	}
}

func TestBatchRetryRunsOnlyFailedItems(t *testing.T) {
	t.Parallel()
	b := setup(t)
	run := &batchRun{}
	w, _ := b.worker(t, core.WorkerOptions{Tasks: []core.Task{run.task(nil)}})
	job, err := core.AddBatchJob(b.ctx, b.utils, []email{{"a"}, {"bad"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.RunOnce(b.ctx); err != nil {
		t.Fatal(err)
	}
	b.exec(t, "update S._private_jobs set run_at = now() where id = $1", job.ID)
	if err := w.RunOnce(b.ctx); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(run.seen()); got != "[[a bad] [bad]]" {
		t.Fatalf("handler calls %s", got)
	}
	if r := b.job(t, job.ID); r.Attempts != 2 {
		t.Fatalf("attempts = %d", r.Attempts)
	}
}

func TestAddBatchJobConcatenatesByKeyAndRejectsEmpty(t *testing.T) {
	t.Parallel()
	b := setup(t)
	spec := &core.JobSpec{JobKey: "digest"}
	first, err := core.AddBatchJob(b.ctx, b.utils, []email{{"a"}}, spec)
	if err != nil {
		t.Fatal(err)
	}
	second, err := core.AddBatchJob(b.ctx, b.utils, []email{{"b"}, {"c"}}, spec)
	if err != nil || second.ID != first.ID || first.TaskIdentifier != "email_batch" {
		t.Fatalf("second add: %+v %v", second, err)
	}
	mustJSONEqual(t, b.job(t, first.ID).Payload, `[{"to":"a"},{"to":"b"},{"to":"c"}]`)
	if _, err := core.AddBatchJob[email](b.ctx, b.utils, nil, nil); !errors.Is(err, core.ErrInvalidInput) {
		t.Fatalf("empty batch: %v", err)
	}
}
