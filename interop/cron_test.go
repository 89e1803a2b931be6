package interop_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/cronspec"
)

// TestCronFiresOnceAcrossNodeAndGworker starts a Node worker and a gworker
// worker with the same crontab on one schema, whose entries both already
// know (known_since well in the past), so that both back-fill the last
// minutes at the same moment. Each matching minute must get exactly one job
// between them, every minute both windows cover must be there, and each
// job's payload must be the same {"_cron": {"ts", "backfilled"}} whichever
// side added it. Back-fill keeps the test to seconds instead of waiting for
// minutes to pass.
func TestCronFiresOnceAcrossNodeAndGworker(t *testing.T) {
	t.Parallel()
	e := setup(t, 2*time.Minute)
	schema := schemaName()
	e.goMigrate(t, schema)

	fills := map[string]time.Duration{"cron_every": 4 * time.Minute, "cron_even": 9 * time.Minute}
	const crontab = "* * * * * cron_every ?fill=4m\n*/2 * * * * cron_even ?fill=9m\n"
	e.exec(t, "insert into "+q(schema)+"._private_known_crontabs (identifier, known_since) values ('cron_every', now() - interval '1 hour'), ('cron_even', now() - interval '1 hour')")

	before := time.Now()
	goStarted := make(chan struct{}, 1)
	g := e.newGoWorker(t, schema, goWorkerConfig{tasks: map[string]string{"unrelated": ""}, crontab: crontab,
		cronEvents: func(ev core.CronEvent) {
			if ev.Kind == core.CronStarted {
				select {
				case goStarted <- struct{}{}:
				default:
				}
			}
		}}, newRecorder())
	a := e.startAgent(t, "worker", map[string]any{"schema": schema, "crontab": crontab,
		"tasks": map[string]any{"unrelated": map[string]any{}}}, nil)
	g.start(t, e.ctx)
	// Back-fill is done when each side says cron started.
	a.expect(e.ctx, "cron:started")
	select {
	case <-goStarted:
	case <-e.ctx.Done():
		t.Fatal("gworker's cron never started")
	}
	after := time.Now()
	a.finish(e.ctx)
	g.stop(t)

	rows, err := e.pool.Query(e.ctx, "select t.identifier, j.Payload::text from "+q(schema)+"._private_jobs j join "+
		q(schema)+"._private_tasks t on t.id = j.Task_id order by j.id")
	if err != nil {
		t.Fatal(err)
	}
	type cronJob struct{ Task, Payload string }
	jobs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[cronJob])
	if err != nil {
		t.Fatal(err)
	}
	fired := map[string][]time.Time{}
	for _, j := range jobs {
		var p struct {
			Cron struct {
				TS         string `json:"ts"`
				Backfilled bool   `json:"backfilled"`
			} `json:"_cron"`
		}
		if err := json.Unmarshal([]byte(j.Payload), &p); err != nil {
			t.Fatalf("payload %s: %v", j.Payload, err)
		}
		ts, err := time.Parse(time.RFC3339Nano, p.Cron.TS)
		if err != nil {
			t.Fatalf("%s job with _cron.ts %q: %v", j.Task, p.Cron.TS, err)
		}
		// The exact text both sides write: the minute in UTC with
		// milliseconds, and back-filled for minutes before either started.
		wantPayload := fmt.Sprintf(`{"_cron":{"ts":%q,"backfilled":%v}}`, ts.UTC().Format("2006-01-02T15:04:05.000Z"), ts.Before(before))
		if ts.Before(before) && !jsonEqual(j.Payload, wantPayload) {
			t.Errorf("%s job payload %s, want %s", j.Task, j.Payload, wantPayload)
		}
		fired[j.Task] = append(fired[j.Task], ts)
	}

	specs := map[string]string{"cron_every": "* * * * *", "cron_even": "*/2 * * * *"}
	for task, fill := range fills {
		tab, err := cronspec.Parse(specs[task] + " " + task)
		if err != nil {
			t.Fatal(err)
		}
		sched := tab[0].Schedule
		got := fired[task]
		slices.SortFunc(got, func(a, b time.Time) int { return a.Compare(b) })
		for i := 1; i < len(got); i++ {
			if got[i].Equal(got[i-1]) {
				t.Errorf("%s fired twice for %s", task, got[i].UTC().Format(time.RFC3339))
			}
		}
		// A worker starting at s back-fills the matching minutes in
		// [s - fill, s). Both started between before and after, so the
		// minutes in [after - fill, before) are in both windows and must
		// have fired; any other must lie in [before - fill, after], the
		// union (with a minute the main loop may reach meanwhile).
		var want []time.Time
		for m := sched.Next(after.Add(-fill).Add(-time.Minute).Truncate(time.Minute)); m.Before(before); m = sched.Next(m) {
			if !m.Before(after.Add(-fill)) {
				want = append(want, m)
			}
		}
		if len(want) == 0 {
			t.Fatalf("%s: no minute to expect; the fill windows are too short", task)
		}
		for _, m := range want {
			if !slices.ContainsFunc(got, m.Equal) {
				t.Errorf("%s did not fire for %s (back-filled by neither side); fired: %v", task, m.UTC().Format(time.RFC3339), got)
			}
		}
		for _, m := range got {
			if !sched.Matches(m) || m.Before(before.Add(-fill).Add(-time.Minute)) || m.After(after) {
				t.Errorf("%s fired for %s, which is no minute of its window", task, m.UTC().Format(time.RFC3339))
			}
		}
		t.Logf("%s fired %d times: %v", task, len(got), got)
	}
}

func jsonEqual(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	return fmt.Sprint(x) == fmt.Sprint(y)
}
