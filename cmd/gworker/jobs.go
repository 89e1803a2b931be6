package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gworker/gworker/core"
)

// filterFlags are the job filters that jobs and the actions share.
type filterFlags struct {
	states  []core.JobState
	tasks   []string
	queues  []string
	key     string
	worker  string
	flags   []string
	payload string
	errText string
}

func (f *filterFlags) register(fs *flagSet) {
	fs.flag(&stateValue{p: &f.states}, "STATE", "ready, scheduled, running, retrying or failed; repeatable or comma-separated", "state")
	fs.flag(&listValue{p: &f.tasks}, "TASK", "jobs of this task identifier; repeatable", "task")
	fs.flag(&listValue{p: &f.queues}, "QUEUE", "jobs of this named queue; repeatable", "queue")
	fs.flag(&stringValue{p: &f.key}, "KEY", "the job with this key", "key")
	fs.flag(&stringValue{p: &f.worker}, "ID", "jobs locked by this worker id", "worker")
	fs.flag(&listValue{p: &f.flags}, "FLAG", "jobs carrying this flag; repeatable (all must be present)", "flag")
	fs.flag(&stringValue{p: &f.payload}, "JSON", `jobs whose payload contains this JSON (jsonb @>), e.g. '{"to": "ada@example.com"}'`, "payload")
	fs.flag(&stringValue{p: &f.errText}, "TEXT", "jobs whose last error contains TEXT (case-insensitive)", "error")
}

// any reports whether a filter flag was given.
func (f *filterFlags) any() bool {
	return len(f.states) > 0 || len(f.tasks) > 0 || len(f.queues) > 0 || f.key != "" || f.worker != "" ||
		len(f.flags) > 0 || f.payload != "" || f.errText != ""
}

// onlyKey reports whether --key is the only filter: it names one job.
func (f *filterFlags) onlyKey() bool {
	g := *f
	g.key = ""
	return f.key != "" && !g.any()
}

func (f *filterFlags) filter() (core.JobFilter, error) {
	jf := core.JobFilter{
		States: f.states, Tasks: f.tasks, Queues: f.queues, Key: f.key, LockedBy: f.worker,
		Flags: f.flags, ErrorContains: f.errText,
	}
	if f.payload != "" {
		if !json.Valid([]byte(f.payload)) {
			return jf, usagef("--payload: %s is not JSON", quoteShort(f.payload))
		}
		jf.PayloadContains = json.RawMessage(f.payload)
	}
	return jf, filterError(jf.Validate())
}

// filterError rewrites core's validation errors in the flags' terms.
func filterError(err error) error {
	var ve *core.ValidationError
	if !errors.As(err, &ve) {
		return err
	}
	names := map[string]string{
		"JobFilter.States": "--state", "JobFilter.Tasks": "--task", "JobFilter.Queues": "--queue",
		"JobFilter.Key": "--key", "JobFilter.LockedBy": "--worker", "JobFilter.Flags": "--flag",
		"JobFilter.PayloadContains": "--payload", "JobFilter.ErrorContains": "--error",
		"ListJobsOptions.Limit": "--limit", "ListJobsOptions.After": "--after", "ListJobsOptions.Before": "--before",
		"RescheduleSpec.Priority": "--priority", "RescheduleSpec.Attempts": "--attempts",
		"RescheduleSpec.MaxAttempts": "--max-attempts",
	}
	field, _, _ := strings.Cut(ve.Field, "[")
	if name, ok := names[field]; ok {
		return usagef("%s: %s", name, ve.Reason)
	}
	return usagef("%s", strings.TrimPrefix(err.Error(), "gworker: "))
}

// stateValue collects job states, comma-separated or repeated.
type stateValue struct{ p *[]core.JobState }

func (v *stateValue) String() string {
	if v == nil || v.p == nil {
		return ""
	}
	var s []string
	for _, st := range *v.p {
		s = append(s, string(st))
	}
	return strings.Join(s, ",")
}
func (v *stateValue) Set(s string) error {
	var known []string
	for _, st := range core.JobStates {
		known = append(known, string(st))
	}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		found := false
		for _, st := range core.JobStates {
			if string(st) == part {
				*v.p, found = append(*v.p, st), true
			}
		}
		if !found {
			return fmt.Errorf("%q is not a state (want %s)%s", part, strings.Join(known, ", "), didYouMean(part, known, ""))
		}
	}
	return nil
}

func jobsCommand() *command {
	return &command{
		name:     "jobs",
		synopsis: "[filters] [--limit N] [--after CURSOR | --before CURSOR] [--oldest-first] [--json | --watch]",
		summary:  "list jobs, newest first, with filters",
		help: `
Lists the jobs matching the filters, newest first (--oldest-first for the
other way), a page at a time: --limit jobs (default 50, at most 1000). A
table that fits an 80-column terminal:

  ID    STATE      TASK         QUEUE  ATTEMPTS  RUN AT     ERROR
  42    retrying   send_email   mail   2/25      in 1m      connection refused

STATE is ready (runnable now), scheduled (run_at in the future), running
(locked by a worker), retrying (failed at least once, attempts left) or
failed (no attempts left). After the page, standard error says how to get
the next and previous pages (--after and --before take the cursors shown).

--json prints one JSON object per job and line instead, the same object
as gworker job --json, gworker add and the admin API: the keys id,
queue_name, task_identifier, payload, priority, run_at, attempts,
max_attempts, last_error, created_at, updated_at, key, locked_at,
locked_by, revision, flags and state; null where the column is NULL, times
RFC 3339 in UTC, flags an array ([] when none). --watch refreshes the
table every --interval (default 2s) until Ctrl-C.`,
		setup: func(fs *flagSet) action {
			var o jobsOptions
			o.interval = 2 * time.Second
			o.filter.register(fs)
			fs.flag(&intValue{p: &o.limit, min: 1, max: core.MaxPageSize}, "N", fmt.Sprintf("jobs per page (default: %d)", core.DefaultPageSize), "limit")
			fs.flag(&stringValue{p: &o.after}, "CURSOR", "the page after this cursor (printed after a page)", "after")
			fs.flag(&stringValue{p: &o.before}, "CURSOR", "the page before this cursor", "before")
			fs.flag(&boolValue{p: &o.oldestFirst}, "", "oldest first", "oldest-first")
			fs.flag(&boolValue{p: &o.json}, "", "one JSON object per job and line", "json")
			fs.flag(&boolValue{p: &o.watch}, "", "refresh until Ctrl-C", "watch")
			fs.flag(&durationValue{p: &o.interval, min: 100 * time.Millisecond}, "DURATION", "with --watch, how often to refresh (default: 2s)", "interval")
			return func(ctx context.Context, e *env, args []string) error {
				if len(args) > 0 {
					return usagef("jobs takes no arguments, got %q (for one job: gworker job ID)", args[0])
				}
				if o.watch && o.json {
					return usagef("--watch refreshes the table; leave out --json")
				}
				return listJobs(ctx, e, fs.opts, &o)
			}
		},
	}
}

type jobsOptions struct {
	filter        filterFlags
	limit         int
	after, before string
	oldestFirst   bool
	json, watch   bool
	interval      time.Duration
}

func listJobs(ctx context.Context, e *env, opts *commonFlags, o *jobsOptions) error {
	jf, err := o.filter.filter()
	if err != nil {
		return err
	}
	lo := core.ListJobsOptions{Filter: jf, Limit: o.limit, After: o.after, Before: o.before, OldestFirst: o.oldestFirst}
	u, closeDB, err := openUtils(ctx, e, opts)
	if err != nil {
		return err
	}
	defer closeDB()
	if !o.watch {
		page, err := u.ListJobs(ctx, lo)
		if err != nil {
			return filterError(err)
		}
		return printJobPage(e, page, o, time.Now())
	}
	ctx, stop := interruptContext(ctx)
	defer stop()
	ticker := time.NewTicker(o.interval)
	defer ticker.Stop()
	for {
		page, err := u.ListJobs(ctx, lo)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return filterError(err)
		}
		now := time.Now()
		// Home and clear: the table replaces the previous one.
		fmt.Fprintf(e.stdout, "\x1b[H\x1b[2J%s, every %v (Ctrl-C to stop)\n\n", now.Format(time.TimeOnly), o.interval)
		if err := printJobPage(e, page, o, now); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

func printJobPage(e *env, page core.JobPage, o *jobsOptions, now time.Time) error {
	if o.json {
		enc := json.NewEncoder(e.stdout)
		for _, j := range page.Jobs {
			if err := enc.Encode(j); err != nil {
				return err
			}
		}
	} else if len(page.Jobs) == 0 {
		fmt.Fprintln(e.stdout, "no job matches")
	} else {
		rows := make([][]string, len(page.Jobs))
		for i, j := range page.Jobs {
			errText := ""
			if j.LastError != nil {
				errText = *j.LastError
			}
			rows[i] = []string{strconv.FormatInt(j.ID, 10), string(j.State(now)), j.TaskIdentifier, orDash(j.QueueName),
				fmt.Sprintf("%d/%d", j.Attempts, j.MaxAttempts), ago(j.RunAt, now), orDash(errText)}
		}
		if err := fitTable(e.stdout, []string{"ID", "STATE", "TASK", "QUEUE", "ATTEMPTS", "RUN AT", "ERROR"}, rows,
			[]int{0, 0, 20, 12, 0, 0, 0}, terminalWidth); err != nil {
			return err
		}
	}
	var hints []string
	if page.Next != "" {
		hints = append(hints, "next page: --after "+page.Next)
	}
	if page.Prev != "" {
		hints = append(hints, "previous page: --before "+page.Prev)
	}
	if len(hints) > 0 && !o.watch {
		fmt.Fprintf(e.stderr, "%s (with the same filters)\n", strings.Join(hints, "; "))
	}
	return nil
}

func jobCommand() *command {
	return &command{
		name:     "job",
		synopsis: "[--json] ID",
		summary:  "show one job: the whole row, its payload and its next attempt",
		help: `
Shows the job: its state, every column of the jobs view, when its next
attempt is due, its payload pretty-printed and its last error in full.
--json prints it as one JSON object, the same as a line of gworker jobs
--json (see gworker help jobs) and the admin API's.`,
		setup: func(fs *flagSet) action {
			asJSON := false
			fs.flag(&boolValue{p: &asJSON}, "", "print one JSON object", "json")
			return func(ctx context.Context, e *env, args []string) error {
				if len(args) != 1 {
					return usagef("job takes one job id")
				}
				id, err := strconv.ParseInt(args[0], 10, 64)
				if err != nil {
					return usagef("job id %q is not a number", args[0])
				}
				return showJob(ctx, e, fs.opts, id, asJSON)
			}
		},
	}
}

func showJob(ctx context.Context, e *env, opts *commonFlags, id int64, asJSON bool) error {
	u, closeDB, err := openUtils(ctx, e, opts)
	if err != nil {
		return err
	}
	defer closeDB()
	j, err := u.GetJob(ctx, id)
	if errors.Is(err, core.ErrJobNotFound) {
		return fmt.Errorf("no job %d in schema %q (completed jobs are deleted)", id, u.Schema())
	}
	if err != nil {
		return err
	}
	now := time.Now()
	if asJSON {
		return json.NewEncoder(e.stdout).Encode(j)
	}
	state := j.State(now)
	when := func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) + " (" + ago(t, now) + ")" }
	var next string
	switch state {
	case core.JobStateRunning:
		next = "running now"
		if j.LockedAt != nil {
			next += ", since " + when(*j.LockedAt)
		}
	case core.JobStateFailed:
		next = "none: no attempts left (gworker retry " + strconv.FormatInt(j.ID, 10) + " runs it again)"
	default:
		if j.RunAt.After(now) {
			next = when(j.RunAt)
		} else {
			next = "now: runnable since " + when(j.RunAt)
		}
	}
	lockedAt := "-"
	if j.LockedAt != nil {
		lockedAt = when(*j.LockedAt)
	}
	flags := "-"
	if len(j.Flags) > 0 {
		flags = strings.Join(j.Flags, ", ")
	}
	tw := newTable(e.stdout)
	for _, kv := range [][2]string{
		{"id", strconv.FormatInt(j.ID, 10)},
		{"task", j.TaskIdentifier},
		{"state", string(state)},
		{"next attempt", next},
		{"queue", orDash(j.QueueName)},
		{"key", orDash(j.Key)},
		{"priority", strconv.Itoa(j.Priority)},
		{"attempts", fmt.Sprintf("%d of %d", j.Attempts, j.MaxAttempts)},
		{"run at", when(j.RunAt)},
		{"locked at", lockedAt},
		{"locked by", orDash(j.LockedBy)},
		{"flags", flags},
		{"created at", when(j.CreatedAt)},
		{"updated at", when(j.UpdatedAt)},
		{"revision", strconv.Itoa(j.Revision)},
	} {
		fmt.Fprintf(tw, "%s:\t%s\n", kv[0], kv[1])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, j.Payload, "  ", "  "); err != nil {
		pretty.Reset()
		pretty.Write(j.Payload)
	}
	fmt.Fprintf(e.stdout, "payload:\n  %s\n", pretty.String())
	if j.LastError != nil {
		fmt.Fprintf(e.stdout, "last error:\n  %s\n", strings.ReplaceAll(strings.TrimRight(*j.LastError, "\n"), "\n", "\n  "))
	} else {
		fmt.Fprintln(e.stdout, "last error: -")
	}
	return nil
}
