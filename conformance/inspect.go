package conformance

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"github.com/gworker/gworker/core"
)

// The read and action API of core.Utils: filters go in as []string,
// []int64, json.RawMessage (jsonb @>) and the jsonb operator ?&; jobs,
// arrays and nullable columns come back; a filter action runs in batches.
func (s *suite) testInspect(t *testing.T) {
	t.Parallel()
	e := s.setupEngine(t)
	var listed []int64
	for i := range 5 {
		j := e.add(itemAdd, "conf_list", map[string]any{"i": i, "tag": "x"}, &core.JobSpec{QueueName: "conf_lq", Flags: []string{"f1", "f2"}})
		listed = append(listed, j.ID)
	}
	keyed := e.add(itemAdd, "conf_list", map[string]any{"i": 9}, &core.JobSpec{JobKey: "conf key"})
	other := e.add(itemAdd, "conf_other", nil, nil)
	if _, err := e.utils.PermanentlyFailJobs(e.ctx, []int64{listed[4]}, "Conf failure"); err != nil {
		itemAdd.fatalf(t, "PermanentlyFailJobs: %v", err)
	}

	// A filtered listing, walked two jobs at a time, newest first.
	filter := core.JobFilter{
		IDs:             append(slices.Clone(listed), other.ID),
		States:          []core.JobState{core.JobStateReady},
		Tasks:           []string{"conf_list", "conf_nobody"},
		Queues:          []string{"conf_lq"},
		Flags:           []string{"f1", "f2"},
		PayloadContains: json.RawMessage(`{"tag": "x"}`),
	}
	var seen []int64
	opts := core.ListJobsOptions{Filter: filter, Limit: 2}
	for range 10 {
		page, err := e.utils.ListJobs(e.ctx, opts)
		if err != nil {
			itemInspect.fatalf(t, "ListJobs(%+v): %v", opts, err)
		}
		for _, j := range page.Jobs {
			seen = append(seen, j.ID)
			if j.TaskIdentifier != "conf_list" || j.QueueName != "conf_lq" || !slices.Equal(j.Flags, []string{"f1", "f2"}) {
				itemInspect.errorf(t, "ListJobs returned %+v", j)
			}
		}
		if page.Next == "" {
			break
		}
		opts.After = page.Next
	}
	if want := []int64{listed[3], listed[2], listed[1], listed[0]}; !slices.Equal(seen, want) {
		itemInspect.errorf(t, "ListJobs with every filter, two per page, listed %v; want %v", seen, want)
	}
	for _, c := range []struct {
		f    core.JobFilter
		want int64
	}{
		{core.JobFilter{Key: "conf key"}, 1},
		{core.JobFilter{ErrorContains: "conf FAIL"}, 1},
		{core.JobFilter{States: []core.JobState{core.JobStateFailed, core.JobStateRunning}}, 1},
		{core.JobFilter{}, 7},
	} {
		if n, err := e.utils.CountJobs(e.ctx, c.f); err != nil || n != c.want {
			itemInspect.errorf(t, "CountJobs(%+v) = %d, %v; want %d", c.f, n, err, c.want)
		}
	}
	if j, err := e.utils.GetJob(e.ctx, keyed.ID); err != nil || j.Key != "conf key" || !sameJSON(j.Payload, `{"i": 9}`) {
		itemInspect.errorf(t, "GetJob(%d) = %+v, %v", keyed.ID, j, err)
	}

	// Stats, exact and sampled (a float8 TABLESAMPLE argument).
	for _, below := range []int64{0, 1} {
		st, err := e.utils.JobStats(e.ctx, core.JobStatsOptions{ExactBelow: below})
		if err != nil {
			itemInspect.fatalf(t, "JobStats(ExactBelow %d): %v", below, err)
		}
		if st.Exact != (below == 0) || st.Total != 7 || st.ByState[core.JobStateReady] != 6 || st.ByState[core.JobStateFailed] != 1 ||
			st.ByTask["conf_list"][core.JobStateReady] != 5 || st.ByQueue["conf_lq"][core.JobStateFailed] != 1 {
			itemInspect.errorf(t, "JobStats(ExactBelow %d) = %+v", below, st)
		}
	}

	// Queues (nullable text and timestamptz), tasks (a text[] column per
	// row), known crontabs.
	e.exec(itemSetup, `update `+e.q+`._private_job_queues set locked_by = 'conf-w', locked_at = now()`)
	e.exec(itemSetup, `insert into `+e.q+`._private_gworker_workers (worker_id, heartbeat_interval, tasks)
		values ('conf-w', interval '1 minute', '{conf_list,conf_idle}')`)
	e.exec(itemSetup, `insert into `+e.q+`._private_known_crontabs (identifier, known_since) values ('conf_cron', now())`)
	queues, err := e.utils.ListQueues(e.ctx)
	if err != nil || len(queues) != 1 || queues[0].Name != "conf_lq" || queues[0].Waiting != 4 || queues[0].LockedBy != "conf-w" || queues[0].LockedAt == nil {
		itemInspect.errorf(t, "ListQueues = %+v, %v", queues, err)
	}
	tasks, err := e.utils.ListTasks(e.ctx)
	got := ""
	for _, ti := range tasks {
		got += fmt.Sprintf("%s:%d:%v ", ti.Identifier, ti.Waiting, ti.Workers)
	}
	if want := "conf_list:5:[conf-w] conf_other:1:[] "; err != nil || got != want {
		itemInspect.errorf(t, "ListTasks = %q, %v; want %q", got, err, want)
	}
	crons, err := e.utils.ListKnownCrontabs(e.ctx)
	if err != nil || len(crons) != 1 || crons[0].Identifier != "conf_cron" || crons[0].LastExecution != nil {
		itemInspect.errorf(t, "ListKnownCrontabs = %+v, %v", crons, err)
	}

	// A filter action: dry run, then in batches of two.
	sel := core.JobSelection{Filter: &core.JobFilter{Tasks: []string{"conf_list"}, States: []core.JobState{core.JobStateReady}}, BatchSize: 2, DryRun: true}
	if res, err := e.utils.FailMatching(e.ctx, sel, "conf"); err != nil || res.Matched != 5 || res.Changed != 0 {
		itemInspect.errorf(t, "FailMatching dry run = %+v, %v; want 5 matched, none changed", res, err)
	}
	if n, _ := e.utils.CountJobs(e.ctx, core.JobFilter{States: []core.JobState{core.JobStateFailed}}); n != 1 {
		itemInspect.errorf(t, "the dry run changed jobs: %d failed, want 1", n)
	}
	sel.DryRun = false
	res, err := e.utils.FailMatching(e.ctx, sel, "conf")
	if want := []int64{listed[0], listed[1], listed[2], listed[3], keyed.ID}; err != nil || res.Matched != 5 || res.Changed != 5 || !slices.Equal(res.IDs, want) {
		itemInspect.errorf(t, "FailMatching in batches of 2 = %+v, %v; want ids %v", res, err, want)
	}
	res, err = e.utils.RetryJobs(e.ctx, core.JobSelection{IDs: []int64{listed[0], other.ID}})
	if err != nil || res.Changed != 2 || !slices.Equal(res.IDs, []int64{listed[0], other.ID}) {
		itemInspect.errorf(t, "RetryJobs = %+v, %v", res, err)
	}
}
