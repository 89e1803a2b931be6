package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gworker/gworker/core"
)

func statsCommand() *command {
	return &command{
		name:     "stats",
		synopsis: "[--json]",
		summary:  "count jobs by state, task and queue",
		help: `
Counts the jobs by state (ready, scheduled, running, retrying, failed), and
per task and per queue. Below 100,000 jobs the counts are exact; above,
they are estimated from the table's statistics and a sample, which the
first line says (so that it stays fast on big tables).

--json prints one object: {"exact", "total", "by_state": {STATE: N},
"by_task": {TASK: {STATE: N}}, "by_queue": {QUEUE: {STATE: N}}}.`,
		setup: func(fs *flagSet) action {
			asJSON := false
			fs.flag(&boolValue{p: &asJSON}, "", "print one JSON object", "json")
			return func(ctx context.Context, e *env, args []string) error {
				if len(args) > 0 {
					return usagef("stats takes no arguments, got %q", args[0])
				}
				u, closeDB, err := openUtils(ctx, e, fs.opts)
				if err != nil {
					return err
				}
				defer closeDB()
				st, err := u.JobStats(ctx, core.JobStatsOptions{})
				if err != nil {
					return err
				}
				if asJSON {
					return printStatsJSON(e, st)
				}
				return printStats(e, st)
			}
		},
	}
}

func printStatsJSON(e *env, st core.JobStats) error {
	nonNil := func(m map[string]core.StateCounts) map[string]core.StateCounts {
		if m == nil {
			return map[string]core.StateCounts{}
		}
		return m
	}
	return json.NewEncoder(e.stdout).Encode(struct {
		Exact   bool                        `json:"exact"`
		Total   int64                       `json:"total"`
		ByState core.StateCounts            `json:"by_state"`
		ByTask  map[string]core.StateCounts `json:"by_task"`
		ByQueue map[string]core.StateCounts `json:"by_queue"`
	}{st.Exact, st.Total, st.ByState, nonNil(st.ByTask), nonNil(st.ByQueue)})
}

func printStats(e *env, st core.JobStats) error {
	how := "exact"
	if !st.Exact {
		how = "estimated: the table is big"
	}
	fmt.Fprintf(e.stdout, "%s (%s)\n\n", plural(st.Total, "job"), how)
	header := []string{""}
	for _, s := range core.JobStates {
		header = append(header, strings.ToUpper(string(s)))
	}
	row := func(name string, c core.StateCounts) []string {
		r := []string{name}
		for _, s := range core.JobStates {
			r = append(r, strconv.FormatInt(c[s], 10))
		}
		return r
	}
	caps := []int{24, 0, 0, 0, 0, 0}
	header[0] = "STATE"
	if err := fitTable(e.stdout, header, [][]string{row("all", st.ByState)}, caps, terminalWidth); err != nil {
		return err
	}
	for _, part := range []struct {
		title string
		by    map[string]core.StateCounts
	}{{"TASK", st.ByTask}, {"QUEUE", st.ByQueue}} {
		if len(part.by) == 0 {
			continue
		}
		var rows [][]string
		for _, name := range slices.Sorted(maps.Keys(part.by)) {
			rows = append(rows, row(name, part.by[name]))
		}
		header[0] = part.title
		fmt.Fprintln(e.stdout)
		if err := fitTable(e.stdout, header, rows, caps, terminalWidth); err != nil {
			return err
		}
	}
	return nil
}

func queuesCommand() *command {
	return &command{
		name:     "queues",
		synopsis: "[--json]",
		summary:  "list named queues: jobs waiting, and who holds each",
		help: `
Lists the named queues: how many jobs wait in each (not locked, attempts
left), and the worker that holds the queue (its jobs run one at a time)
and since when. --json prints a JSON array of {"name", "waiting",
"locked_by", "locked_at"}.`,
		setup: func(fs *flagSet) action {
			asJSON := false
			fs.flag(&boolValue{p: &asJSON}, "", "print a JSON array", "json")
			return func(ctx context.Context, e *env, args []string) error {
				if len(args) > 0 {
					return usagef("queues takes no arguments, got %q", args[0])
				}
				u, closeDB, err := openUtils(ctx, e, fs.opts)
				if err != nil {
					return err
				}
				defer closeDB()
				qs, err := u.ListQueues(ctx)
				if err != nil {
					return err
				}
				if asJSON {
					type queueJSON struct {
						Name     string     `json:"name"`
						Waiting  int64      `json:"waiting"`
						LockedBy *string    `json:"locked_by"`
						LockedAt *time.Time `json:"locked_at"`
					}
					out := []queueJSON{}
					for _, q := range qs {
						var by *string
						if q.LockedBy != "" {
							by = &q.LockedBy
						}
						out = append(out, queueJSON{q.Name, q.Waiting, by, q.LockedAt})
					}
					return json.NewEncoder(e.stdout).Encode(out)
				}
				if len(qs) == 0 {
					_, err := fmt.Fprintln(e.stdout, "no named queue")
					return err
				}
				now := time.Now()
				rows := make([][]string, len(qs))
				for i, q := range qs {
					since := "-"
					if q.LockedAt != nil {
						since = ago(*q.LockedAt, now)
					}
					rows[i] = []string{q.Name, strconv.FormatInt(q.Waiting, 10), since, orDash(q.LockedBy)}
				}
				return fitTable(e.stdout, []string{"QUEUE", "WAITING", "LOCKED", "LOCKED BY"}, rows, []int{30, 0, 0, 0}, terminalWidth)
			}
		},
	}
}

func tasksCommand() *command {
	return &command{
		name:     "tasks",
		synopsis: "[--json]",
		summary:  "list tasks: jobs waiting, and the live workers that run them",
		help: `
Lists the task identifiers that jobs use: how many jobs wait (not locked,
attempts left), how many of those are runnable now, and the live gworker
workers that registered the task. A task with runnable jobs and no worker
is marked "nobody": no gworker worker runs it (a graphile-worker on Node
may, which gworker cannot see), so its jobs wait; a misspelt task name
looks like this. --json prints a JSON array of {"identifier", "waiting",
"ready", "workers"}.`,
		setup: func(fs *flagSet) action {
			asJSON := false
			fs.flag(&boolValue{p: &asJSON}, "", "print a JSON array", "json")
			return func(ctx context.Context, e *env, args []string) error {
				if len(args) > 0 {
					return usagef("tasks takes no arguments, got %q", args[0])
				}
				u, closeDB, err := openUtils(ctx, e, fs.opts)
				if err != nil {
					return err
				}
				defer closeDB()
				ts, err := u.ListTasks(ctx)
				if err != nil {
					return err
				}
				if asJSON {
					type taskJSON struct {
						Identifier string   `json:"identifier"`
						Waiting    int64    `json:"waiting"`
						Ready      int64    `json:"ready"`
						Workers    []string `json:"workers"`
					}
					out := []taskJSON{}
					for _, t := range ts {
						out = append(out, taskJSON{t.Identifier, t.Waiting, t.Ready, nonNil(t.Workers)})
					}
					return json.NewEncoder(e.stdout).Encode(out)
				}
				if len(ts) == 0 {
					_, err := fmt.Fprintln(e.stdout, "no task has jobs")
					return err
				}
				rows := make([][]string, len(ts))
				for i, t := range ts {
					workers := strings.Join(t.Workers, ", ")
					switch {
					case len(t.Workers) > 0:
					case t.Ready > 0:
						workers = "nobody (its jobs wait)"
					default:
						workers = "-"
					}
					rows[i] = []string{t.Identifier, strconv.FormatInt(t.Waiting, 10), strconv.FormatInt(t.Ready, 10), workers}
				}
				return fitTable(e.stdout, []string{"TASK", "WAITING", "READY", "WORKERS"}, rows, []int{30, 0, 0, 0}, terminalWidth)
			}
		},
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// cronList serves "gworker cron list": the crontab entries the database
// knows (graphile-worker's known_crontabs) and when each last ran.
func cronList(ctx context.Context, e *env, opts *commonFlags, asJSON bool) error {
	u, closeDB, err := openUtils(ctx, e, opts)
	if err != nil {
		return err
	}
	defer closeDB()
	cs, err := u.ListKnownCrontabs(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		type crontabJSON struct {
			Identifier    string     `json:"identifier"`
			KnownSince    time.Time  `json:"known_since"`
			LastExecution *time.Time `json:"last_execution"`
		}
		out := []crontabJSON{}
		for _, c := range cs {
			out = append(out, crontabJSON{c.Identifier, c.KnownSince.UTC(), utcPtr(c.LastExecution)})
		}
		return json.NewEncoder(e.stdout).Encode(out)
	}
	if len(cs) == 0 {
		_, err := fmt.Fprintln(e.stdout, "no crontab entry has run on this schema")
		return err
	}
	rows := make([][]string, len(cs))
	for i, c := range cs {
		last := "never"
		if c.LastExecution != nil {
			last = c.LastExecution.UTC().Format(time.RFC3339)
		}
		rows[i] = []string{c.Identifier, c.KnownSince.UTC().Format(time.RFC3339), last}
	}
	return fitTable(e.stdout, []string{"IDENTIFIER", "KNOWN SINCE (UTC)", "LAST EXECUTION (UTC)"}, rows, []int{30, 0, 0}, terminalWidth)
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func cleanupCommand() *command {
	return &command{
		name:     "cleanup",
		synopsis: "[TASK...]",
		summary:  "delete permanently failed jobs, unused task names and queues",
		help: `
Runs graphile-worker's cleanup tasks, named as in graphile-worker's
--cleanup (comma- or space-separated, any case):

  DELETE_PERMAFAILED_JOBS  delete the jobs with no attempts left (not locked)
  GC_TASK_IDENTIFIERS      delete task identifiers that no job uses
  GC_JOB_QUEUES            delete named queues that no job uses

Without a TASK it runs GC_TASK_IDENTIFIERS and GC_JOB_QUEUES, as
graphile-worker does. The identifiers of tasks that live gworker workers
registered are kept: such workers cache them.`,
		setup: func(fs *flagSet) action {
			return func(ctx context.Context, e *env, args []string) error {
				var tasks []core.CleanupTask
				known := []string{string(core.DeletePermafailedJobs), string(core.GCTaskIdentifiers), string(core.GCJobQueues)}
				for _, a := range args {
					for part := range strings.SplitSeq(a, ",") {
						name := strings.ToUpper(strings.TrimSpace(part))
						if !slices.Contains(known, name) {
							return usagef("unknown cleanup task %q (want %s)%s", part, strings.Join(known, ", "), didYouMean(name, known, ""))
						}
						tasks = append(tasks, core.CleanupTask(name))
					}
				}
				if len(tasks) == 0 {
					tasks = []core.CleanupTask{core.GCTaskIdentifiers, core.GCJobQueues}
				}
				return cleanup(ctx, e, fs.opts, tasks)
			}
		},
	}
}

func cleanup(ctx context.Context, e *env, opts *commonFlags, tasks []core.CleanupTask) error {
	u, closeDB, err := openUtils(ctx, e, opts)
	if err != nil {
		return err
	}
	defer closeDB()
	failed := int64(-1)
	if slices.Contains(tasks, core.DeletePermafailedJobs) {
		// Cleanup reports no counts; this one is worth saying.
		if failed, err = u.CountJobs(ctx, core.JobFilter{States: []core.JobState{core.JobStateFailed}}); err != nil {
			return err
		}
	}
	if err := u.Cleanup(ctx, core.CleanupOptions{Tasks: tasks}); err != nil {
		return err
	}
	var done []string
	for _, t := range tasks {
		done = append(done, string(t))
	}
	line := "cleanup done: " + strings.Join(done, ", ")
	if failed >= 0 {
		line += fmt.Sprintf(" (%s permanently failed)", plural(failed, "job"))
	}
	_, err = fmt.Fprintln(e.stdout, line)
	return err
}

func forceUnlockCommand() *command {
	return &command{
		name:     "force-unlock",
		synopsis: "WORKER_ID...",
		summary:  "release the jobs and queues locked by dead workers",
		help: `
Releases every job and named queue locked by the given workers, as
graphile-worker's force_unlock_workers does: the jobs become runnable
again at once. Only for workers known to be dead (a worker still running
would run its jobs a second time); "gworker sweep" finds dead gworker
workers by their heartbeats. "gworker jobs --state running" shows the
worker ids.`,
		setup: func(fs *flagSet) action {
			return func(ctx context.Context, e *env, args []string) error {
				if len(args) == 0 {
					return usagef("force-unlock needs the ids of the dead workers")
				}
				u, closeDB, err := openUtils(ctx, e, fs.opts)
				if err != nil {
					return err
				}
				defer closeDB()
				var held []string
				for _, w := range args {
					n, err := u.CountJobs(ctx, core.JobFilter{LockedBy: w})
					if err != nil {
						return err
					}
					held = append(held, fmt.Sprintf("%s: %d", w, n))
				}
				if err := u.ForceUnlockWorkers(ctx, args); err != nil {
					return err
				}
				_, err = fmt.Fprintf(e.stdout, "unlocked the jobs and queues of %s (jobs released: %s)\n",
					plural(int64(len(args)), "worker"), strings.Join(held, ", "))
				return err
			}
		},
	}
}
