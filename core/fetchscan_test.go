package core_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/gworker/gworker/core"
)

// A fetch reads its rows with one scanner; every job must keep its own
// values, with nullable columns that alternate between rows (a value left
// over from the row before would show up here).
func TestFetchedBatchKeepsEachRowsValues(t *testing.T) {
	t.Parallel()
	b := setup(t)
	type want struct {
		key, lastError string
		flags          []string
		payload        string
	}
	wants := map[int64]want{}
	for i := 0; i < 40; i++ {
		spec := &core.JobSpec{Priority: i} // in this order, one batch
		w := want{payload: fmt.Sprintf(`{"i": %d}`, i)}
		if i%2 == 0 {
			spec.JobKey = fmt.Sprintf("key-%d", i)
			spec.Flags = []string{fmt.Sprintf("f%d", i), "common"}
			w.key, w.flags = spec.JobKey, spec.Flags
			slices.Sort(w.flags)
		}
		j, err := b.utils.AddRawJob(b.ctx, "scan", json.RawMessage(w.payload), spec)
		if err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 {
			w.lastError = fmt.Sprintf("earlier failure %d", i)
			b.exec(t, "update S._private_jobs set last_error = $1 where id = $2", w.lastError, j.ID)
		}
		wants[j.ID] = w
	}
	var (
		mu   sync.Mutex
		seen = map[int64]*core.Job{}
	)
	w, err := core.NewWorker(core.WorkerOptions{
		Database: b.db, Schema: b.schema, Concurrency: 4,
		LocalQueue: core.LocalQueueOptions{Size: 100},
		Tasks: []core.Task{core.RawTask("scan", func(_ context.Context, j *core.Job) error {
			mu.Lock()
			seen[j.ID] = j
			mu.Unlock()
			return nil
		})},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.RunOnce(b.ctx); err != nil {
		t.Fatal(err)
	}
	if len(seen) != len(wants) {
		t.Fatalf("ran %d jobs, want %d", len(seen), len(wants))
	}
	for id, w := range wants {
		j := seen[id]
		var got, exp any
		if err := json.Unmarshal(j.Payload, &got); err != nil {
			t.Fatalf("job %d: payload %s: %v", id, j.Payload, err)
		}
		_ = json.Unmarshal([]byte(w.payload), &exp)
		if fmt.Sprint(got) != fmt.Sprint(exp) {
			t.Errorf("job %d: payload %s, want %s", id, j.Payload, w.payload)
		}
		lastError := ""
		if j.LastError != nil {
			lastError = *j.LastError
		}
		if j.Key != w.key || !slices.Equal(j.Flags, w.flags) || lastError != w.lastError || j.Attempts != 1 {
			t.Errorf("job %d: key %q flags %v last_error %q attempts %d, want %q %v %q 1",
				id, j.Key, j.Flags, lastError, j.Attempts, w.key, w.flags, w.lastError)
		}
	}
}
