package interop_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestUpgradeOldNodeSchemas takes schemas that older graphile-worker
// releases from npm made and filled with jobs, upgrades them with gworker's
// migrate, and requires graphile-worker 0.18 to take the result as its own
// (same ledger and catalog as a schema it made, and runMigrations changes
// nothing), and the old jobs to run on either side.
//
// No release stops at ledger 11 (0.13 stops at 10, 0.14 and 0.15 at 14) or
// at 16 (0.16.0 already reaches 18), so those two are made by the release's
// own migrator with its later migrations hidden from it; see stopAt in
// node/agent.mjs. 0.16.6 leaves ledger 18 by itself.
func TestUpgradeOldNodeSchemas(t *testing.T) {
	t.Parallel()
	e := setup(t, 3*time.Minute)

	ref := schemaName()
	e.nodeMigrate(t, ref, "", 0)
	wantFacts, wantLedger := e.catalogFacts(t, ref), e.ledger(t, ref)

	for _, c := range []struct {
		name, module string
		stopAt, want int
	}{
		{"graphile-worker-0.15.1-at-11", "graphile-worker-0.15", 11, 11},
		{"graphile-worker-0.16.6-at-16", "graphile-worker-0.16", 16, 16},
		{"graphile-worker-0.16.6-at-18", "graphile-worker-0.16", 0, 18},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			schema := schemaName()
			e.nodeMigrate(t, schema, c.module, c.stopAt)
			if got := e.queryInt(t, "select max(id) from "+q(schema)+".migrations"); got != c.want {
				t.Fatalf("%s left ledger %d, want %d", c.module, got, c.want)
			}

			// Jobs as the old release adds them: plain, queued, keyed,
			// prioritised, one already failed once.
			var steps []addStep
			for _, task := range []string{"old_node", "old_go"} {
				steps = append(steps,
					add(task, `{"kind": "plain"}`, addSpec{}),
					add(task, `{"kind": "queued"}`, addSpec{QueueName: "old-queue-" + task}),
					add(task, `{"kind": "keyed"}`, addSpec{JobKey: "key-" + task, Priority: prio(-3), MaxAttempts: 5}),
					add(task, `{"kind": "failed-once"}`, addSpec{JobKey: "failed-" + task}),
				)
			}
			// Before migration 16 the jobs table was called jobs.
			table := "_private_jobs"
			if c.want < 16 {
				table = "jobs"
			}
			steps = append(steps, sqlStep(fmt.Sprintf(
				`update %s.%s set attempts = 1, last_error = 'earlier failure' where key like 'failed-%%'`, q(schema), table)))
			e.runAgent(t, "add", map[string]any{"schema": schema, "module": c.module, "steps": steps})

			e.goMigrate(t, schema)
			if got := e.ledger(t, schema); !slices.Equal(got, wantLedger) {
				t.Errorf("ledger after gworker migrate: %v, want graphile-worker 0.18's %v", got, wantLedger)
			}
			upgraded := e.catalogFacts(t, schema)
			if d := diffLines(graphileOnly(wantFacts, false), graphileOnly(upgraded, false)); d != "" {
				t.Errorf("catalog after gworker migrate differs from graphile-worker 0.18's (- 0.18, + upgraded):\n%s", d)
			}
			e.nodeMigrate(t, schema, "", 0)
			if d := diffLines(upgraded, e.catalogFacts(t, schema)); d != "" {
				t.Errorf("graphile-worker 0.18 changed the upgraded schema (- before, + after):\n%s", d)
			}

			// Node runs old_node's jobs, gworker old_go's.
			rec := newRecorder()
			a := e.startAgent(t, "worker", map[string]any{"schema": schema, "once": true,
				"tasks": map[string]any{"old_node": map[string]any{}}}, rec)
			a.expect(e.ctx, "stopped")
			a.finish(e.ctx)
			g := e.newGoWorker(t, schema, goWorkerConfig{tasks: map[string]string{"old_go": ""}}, rec)
			if err := g.w.RunOnce(e.ctx); err != nil {
				t.Fatalf("gworker RunOnce: %v", err)
			}
			got := map[string][]string{}
			for _, r := range rec.all() {
				var p struct{ Kind string }
				if err := json.Unmarshal(r.Payload, &p); err != nil {
					t.Fatal(err)
				}
				if want := map[string]string{"node": "old_node", "go": "old_go"}[r.Runner]; r.Task != want {
					t.Errorf("%s ran a job of task %s", r.Runner, r.Task)
				}
				got[r.Runner] = append(got[r.Runner], fmt.Sprintf("%s@%d", p.Kind, r.Attempts))
			}
			want := []string{"failed-once@2", "keyed@1", "plain@1", "queued@1"}
			for _, side := range []string{"node", "go"} {
				slices.Sort(got[side])
				if !slices.Equal(got[side], want) {
					t.Errorf("%s ran %s, want %s (kind@attempt)", side, strings.Join(got[side], " "), strings.Join(want, " "))
				}
			}
			if left := e.queryInt(t, "select count(*) from "+q(schema)+"._private_jobs"); left != 0 {
				t.Errorf("%d old jobs left after both sides ran", left)
			}
		})
	}
}
