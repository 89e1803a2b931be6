package interop_test

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/gworker/gworker/core"
)

// TestMixedWorkersDrainTogether has one Node worker and one gworker worker
// drain 5,000 jobs from one schema, a third of them on five named queues
// they share. Every job must run exactly once, both workers must take part,
// and no named queue may ever run two jobs at once across the two: the
// runs of each queue, ordered by start, must not overlap.
func TestMixedWorkersDrainTogether(t *testing.T) {
	t.Parallel()
	e := setup(t, 3*time.Minute)
	schema := schemaName()
	e.goMigrate(t, schema)

	const total = 5000
	queues := []string{"shared-a", "shared-b", "shared-c", "shared-d", "shared-e"}
	rec := newRecorder()

	a := e.startAgent(t, "worker", map[string]any{"schema": schema, "concurrency": 4, "pollInterval": 1000,
		"tasks": map[string]any{"mixed": map[string]any{}}}, rec)
	g := e.newGoWorker(t, schema, goWorkerConfig{tasks: map[string]string{"mixed": ""}, concurrency: 4, pollInterval: time.Second}, rec)
	g.start(t, e.ctx)
	// Both must be ready before the jobs arrive, or the first one up would
	// drain them alone.
	a.expect(e.ctx, "listening")
	select {
	case <-g.listening:
	case <-e.ctx.Done():
		t.Fatal("gworker's worker never listened")
	}

	type payload struct {
		N     int    `json:"n"`
		Queue string `json:"queue"`
	}
	jobs := make([]core.NewJob, total)
	for i := range jobs {
		p := payload{N: i}
		if i%3 == 0 {
			p.Queue = queues[i/3%len(queues)]
		}
		jobs[i] = core.NewJob{Identifier: "mixed", Payload: p, Spec: core.JobSpec{QueueName: p.Queue}}
	}
	began := time.Now()
	if _, err := e.utils(t, schema).AddJobs(e.ctx, jobs); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, e.ctx, total)
	t.Logf("%d jobs drained in %s", total, time.Since(began).Round(time.Millisecond))
	a.finish(e.ctx)
	g.stop(t)
	runs := rec.all() // anything run twice shows up now

	if left := e.queryInt(t, "select count(*) from "+q(schema)+"._private_jobs"); left != 0 {
		t.Errorf("%d jobs left in the table after all ran", left)
	}
	byRunner := map[string]int{}
	seen := map[int]run{}
	perQueue := map[string][]run{}
	for _, r := range runs {
		byRunner[r.Runner]++
		var p payload
		if err := json.Unmarshal(r.Payload, &p); err != nil {
			t.Fatalf("payload of job %d: %v", r.ID, err)
		}
		if prev, dup := seen[p.N]; dup {
			t.Errorf("job n=%d ran twice: by %s (job %d) and by %s (job %d)", p.N, prev.Runner, prev.ID, r.Runner, r.ID)
		}
		seen[p.N] = r
		if r.Attempts != 1 {
			t.Errorf("job n=%d ran at attempt %d", p.N, r.Attempts)
		}
		if p.Queue != "" {
			perQueue[p.Queue] = append(perQueue[p.Queue], r)
		}
	}
	if len(seen) != total {
		t.Errorf("%d distinct jobs ran, want %d", len(seen), total)
	}
	t.Logf("runs by side: %v", byRunner)
	if byRunner["node"] == 0 || byRunner["go"] == 0 {
		t.Errorf("both workers should have run jobs: %v", byRunner)
	}
	for _, name := range queues {
		rs := perQueue[name]
		if len(rs) == 0 {
			t.Errorf("queue %s ran no jobs", name)
		}
		slices.SortFunc(rs, func(x, y run) int { return cmp.Compare(x.Start, y.Start) })
		sides := map[string]int{}
		for i, r := range rs {
			sides[r.Runner]++
			if i > 0 && r.Start < rs[i-1].End {
				t.Errorf("queue %s ran two jobs at once: job %d (%s) started %s before job %d (%s) ended",
					name, r.ID, r.Runner, time.Duration(rs[i-1].End-r.Start)*time.Microsecond, rs[i-1].ID, rs[i-1].Runner)
			}
		}
		t.Logf("queue %s: %s", name, fmt.Sprint(sides))
	}
}
