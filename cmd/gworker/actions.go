package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gworker/gworker/core"
)

// jobAction is one of the commands acting on jobs by id or by filter.
type jobAction struct {
	name    string // the command
	verb    string // "retry", for "retry 12 jobs?"
	done    string // "retried", for "retried 12 jobs"
	summary string
	help    string
	// flags registers the action's own flags and returns the action, and
	// optionally its one-job forms.
	flags func(fs *flagSet) (actFunc, singleFunc)
}

// actFunc acts on a selection.
type actFunc func(ctx context.Context, u *core.Utils, sel core.JobSelection) (core.ActionResult, error)

// singleFunc serves an action's one-job forms (cancel ID, remove --key K),
// which print the job as JSON as they always did; handled is false for
// other selections.
type singleFunc func(ctx context.Context, e *env, u *core.Utils, ids []int64, f *filterFlags) (handled bool, err error)

// actionOptions are the flags every job action takes.
type actionOptions struct {
	filter filterFlags
	all    bool
	yes    bool
	dryRun bool
	json   bool
}

func (a *jobAction) command() *command {
	return &command{
		name:     a.name,
		synopsis: "[flags] [ID...] [filters]",
		summary:  a.summary,
		help: strings.TrimSpace(a.help) + `

Acts on the jobs given by id, or on every job matching the filters (--state,
--task, --queue, --key, --worker, --flag, --payload, --error; --all for
every job), in batches of 1000 so that no statement locks many rows. Ids
and filters together select the ids that match. Jobs locked by a worker
(less than 4 hours ago) are skipped, except by cancel.

With filters (other than --key alone), it first prints how many jobs match
and asks for confirmation on the terminal; --yes does not ask, and without
a terminal it refuses unless --yes is given. --dry-run prints the count
and changes nothing. It prints how many jobs it changed and skipped;
--json prints {"matched", "changed", "skipped", "ids"} instead.`,
		setup: func(fs *flagSet) action {
			var o actionOptions
			o.filter.register(fs)
			fs.flag(&boolValue{p: &o.all}, "", "every job (when no id and no filter is given)", "all")
			fs.flag(&boolValue{p: &o.yes}, "", "do not ask for confirmation", "y", "yes")
			fs.flag(&boolValue{p: &o.dryRun}, "", "print how many jobs match and change nothing", "dry-run")
			fs.flag(&boolValue{p: &o.json}, "", "print the result as JSON", "json")
			act, single := a.flags(fs)
			return func(ctx context.Context, e *env, args []string) error {
				return a.run(ctx, e, fs.opts, &o, args, act, single)
			}
		},
	}
}

func (a *jobAction) run(ctx context.Context, e *env, opts *commonFlags, o *actionOptions, args []string,
	act actFunc, single singleFunc) error {
	ids, err := parseIDs(args)
	if err != nil {
		return err
	}
	if len(ids) == 0 && !o.filter.any() && !o.all {
		return usagef("%s needs job ids, or filters such as --state failed --task NAME (--all for every job)", a.name)
	}
	if o.all && (len(ids) > 0 || o.filter.any()) {
		return usagef("--all selects every job; leave out the ids and filters, or --all")
	}
	jf, err := o.filter.filter()
	if err != nil {
		return err
	}
	u, closeDB, err := openUtils(ctx, e, opts)
	if err != nil {
		return err
	}
	defer closeDB()
	if single != nil && !o.dryRun && !o.json {
		if handled, err := single(ctx, e, u, ids, &o.filter); handled {
			return err
		}
	}

	sel := core.JobSelection{IDs: ids}
	if o.filter.any() || o.all {
		sel.Filter = &jf
	}
	// Ids and a key name their jobs; any other filter may match many, which
	// deserves a look first.
	broad := o.all || (o.filter.any() && !o.filter.onlyKey())
	if broad || o.dryRun {
		dry := sel
		dry.DryRun = true
		res, err := act(ctx, u, dry)
		if err != nil {
			return filterError(err)
		}
		if o.dryRun {
			return a.print(e, res, o, true)
		}
		if res.Matched == 0 {
			return a.print(e, res, o, false)
		}
		fmt.Fprintf(e.stderr, "%s: %s%s", a.name, matching(res.Matched), skippedNote(res))
		if !o.yes {
			if err := a.confirm(e, res); err != nil {
				return err
			}
		} else {
			fmt.Fprintln(e.stderr)
		}
	}
	res, err := act(ctx, u, sel)
	if err != nil {
		return filterError(err)
	}
	return a.print(e, res, o, false)
}

// matching writes "1 job matches", "2 jobs match".
func matching(n int64) string {
	if n == 1 {
		return "1 job matches"
	}
	return plural(n, "job") + " match"
}

// skippedNote says how many of the matched jobs will be left alone.
func skippedNote(res core.ActionResult) string {
	if res.Skipped == 0 {
		return ""
	}
	return fmt.Sprintf(" (%d of them locked by a worker, left alone)", res.Skipped)
}

// confirm asks on the terminal; without one it refuses.
func (a *jobAction) confirm(e *env, res core.ActionResult) error {
	if !e.interactive() {
		fmt.Fprintln(e.stderr)
		return fmt.Errorf("refusing to %s %s without confirmation: standard input is not a terminal; pass --yes",
			a.verb, plural(res.Matched-res.Skipped, "job"))
	}
	fmt.Fprintf(e.stderr, "; %s them? [y/N] ", a.verb)
	line, _ := bufio.NewReader(e.stdin).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	return errors.New("nothing done")
}

func (a *jobAction) print(e *env, res core.ActionResult, o *actionOptions, dry bool) error {
	if o.json {
		ids := res.IDs
		if ids == nil {
			ids = []int64{}
		}
		return json.NewEncoder(e.stdout).Encode(struct {
			DryRun  bool    `json:"dry_run"`
			Matched int64   `json:"matched"`
			Changed int64   `json:"changed"`
			Skipped int64   `json:"skipped"`
			IDs     []int64 `json:"ids"`
		}{dry, res.Matched, res.Changed, res.Skipped, ids})
	}
	if dry {
		_, err := fmt.Fprintf(e.stdout, "%s: %s%s; nothing changed (--dry-run)\n", a.name, matching(res.Matched), skippedNote(res))
		return err
	}
	line := fmt.Sprintf("%s %s", a.done, plural(res.Changed, "job"))
	if res.Skipped > 0 {
		line += fmt.Sprintf(", skipped %d (locked by a worker)", res.Skipped)
	}
	if res.Changed > 0 && len(res.IDs) <= 20 {
		var s []string
		for _, id := range res.IDs {
			s = append(s, strconv.FormatInt(id, 10))
		}
		line += ": " + strings.Join(s, ", ")
	}
	_, err := fmt.Fprintln(e.stdout, line)
	return err
}

func parseIDs(args []string) ([]int64, error) {
	var ids []int64
	for _, a := range args {
		for part := range strings.SplitSeq(a, ",") {
			id, err := strconv.ParseInt(strings.TrimSpace(part), 10, 64)
			if err != nil || id <= 0 {
				return nil, usagef("job id %q is not a number", part)
			}
			ids = append(ids, id)
		}
	}
	return ids, nil
}

func jobActions() []*jobAction {
	return []*jobAction{
		{
			name: "retry", verb: "retry", done: "retried",
			summary: "run jobs again now: attempts back to 0",
			help: `
Makes the jobs runnable now with their attempts back to 0, failed ones
included; their last error stays until the next attempt.`,
			flags: func(fs *flagSet) (actFunc, singleFunc) {
				return func(ctx context.Context, u *core.Utils, sel core.JobSelection) (core.ActionResult, error) {
					return u.RetryJobs(ctx, sel)
				}, nil
			},
		},
		{
			name: "reschedule", verb: "reschedule", done: "rescheduled",
			summary: "change jobs' run time, priority or attempts",
			help: `
Sets what the flags give on the jobs: --run-at TIME (RFC 3339) or --in
DURATION from now, --priority, --attempts, --max-attempts.`,
			flags: func(fs *flagSet) (actFunc, singleFunc) {
				var runAt time.Time
				var in time.Duration
				priority := intValue{min: math.MinInt16, max: math.MaxInt16}
				attempts := intValue{min: 0, max: math.MaxInt16}
				maxAttempts := intValue{min: 1, max: math.MaxInt16}
				var p, a, m int
				priority.p, attempts.p, maxAttempts.p = &p, &a, &m
				fs.flag(&timeValue{p: &runAt}, "TIME", "run at TIME, RFC 3339", "run-at")
				fs.flag(&durationValue{p: &in}, "DURATION", "run DURATION from now, e.g. 10m", "in")
				fs.flag(&priority, "N", "priority; a lower number runs first", "priority")
				fs.flag(&attempts, "N", "attempts made so far", "attempts")
				fs.flag(&maxAttempts, "N", "attempts before the job fails for good", "max-attempts")
				return func(ctx context.Context, u *core.Utils, sel core.JobSelection) (core.ActionResult, error) {
					var spec core.RescheduleSpec
					switch {
					case !runAt.IsZero() && in != 0:
						return core.ActionResult{}, usagef("--run-at and --in do not go together")
					case !runAt.IsZero():
						spec.RunAt = &runAt
					case in != 0:
						t := time.Now().Add(in)
						spec.RunAt = &t
					}
					if priority.set {
						spec.Priority = &p
					}
					if attempts.set {
						spec.Attempts = &a
					}
					if maxAttempts.set {
						spec.MaxAttempts = &m
					}
					if spec == (core.RescheduleSpec{}) {
						return core.ActionResult{}, usagef("reschedule needs --run-at, --in, --priority, --attempts or --max-attempts")
					}
					return u.RescheduleMatching(ctx, sel, spec)
				}, nil
			},
		},
		{
			name: "complete", verb: "complete", done: "completed",
			summary: "mark jobs done (deletes them) without running them",
			help: `
Completes the jobs as if their task had succeeded: they are deleted.`,
			flags: func(fs *flagSet) (actFunc, singleFunc) {
				return func(ctx context.Context, u *core.Utils, sel core.JobSelection) (core.ActionResult, error) {
					return u.CompleteMatching(ctx, sel)
				}, nil
			},
		},
		{
			name: "fail", verb: "fail", done: "failed",
			summary: "fail jobs for good with a reason",
			help: `
Fails the jobs permanently (attempts set to max attempts) with --reason as
their last error; they stay in the table, never to run unless retried.`,
			flags: func(fs *flagSet) (actFunc, singleFunc) {
				reason := ""
				fs.flag(&stringValue{p: &reason}, "TEXT", "why; stored as last_error (required)", "reason")
				return func(ctx context.Context, u *core.Utils, sel core.JobSelection) (core.ActionResult, error) {
					if reason == "" {
						return core.ActionResult{}, usagef("fail needs --reason TEXT")
					}
					return u.FailMatching(ctx, sel, reason)
				}, nil
			},
		},
		{
			name: "remove", verb: "remove", done: "removed",
			summary: "delete jobs, or the job with a key",
			help: `
Deletes the jobs. "gworker remove --key KEY" alone is graphile-worker's
remove_job: it deletes the job with that key, or, when a worker holds it,
stops it from running again; it prints the job as JSON.`,
			flags: func(fs *flagSet) (actFunc, singleFunc) {
				return func(ctx context.Context, u *core.Utils, sel core.JobSelection) (core.ActionResult, error) {
						return u.RemoveMatching(ctx, sel)
					}, func(ctx context.Context, e *env, u *core.Utils, ids []int64, f *filterFlags) (bool, error) {
						if len(ids) > 0 || !f.onlyKey() {
							return false, nil
						}
						job, err := u.RemoveJob(ctx, f.key)
						if err != nil {
							return true, err
						}
						return true, printJobJSON(e, job)
					}
			},
		},
		{
			name: "cancel", verb: "cancel", done: "cancelled",
			summary: "cancel jobs for good, even while they run",
			help: `
Marks the jobs permanently failed with "Cancelled: REASON" as last_error,
so they never run again. If a gworker worker runs one right now, that
worker cancels the handler's context (an executable task gets SIGTERM) and
records the job as failed with the reason. Locked jobs are cancelled too.

With one ID, or --key KEY alone, it prints that job as one JSON object.`,
			flags: func(fs *flagSet) (actFunc, singleFunc) {
				reason := ""
				fs.flag(&stringValue{p: &reason}, "TEXT", "why; stored in last_error as \"Cancelled: TEXT\"", "reason")
				return func(ctx context.Context, u *core.Utils, sel core.JobSelection) (core.ActionResult, error) {
						return u.CancelMatching(ctx, sel, reason)
					}, func(ctx context.Context, e *env, u *core.Utils, ids []int64, f *filterFlags) (bool, error) {
						var job *core.Job
						var err error
						switch {
						case len(ids) == 1 && !f.any():
							job, err = u.CancelJob(ctx, ids[0], reason)
						case len(ids) == 0 && f.onlyKey():
							job, err = u.CancelJobByKey(ctx, f.key, reason)
						default:
							return false, nil
						}
						if err != nil {
							return true, err
						}
						return true, printJobJSON(e, job)
					}
			},
		},
	}
}

func printJobJSON(e *env, job *core.Job) error {
	out, err := json.Marshal(job) // core.Job's one encoding, as the admin API's
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(e.stdout, "%s\n", out)
	return err
}

// interruptContext is ctx, also cancelled by SIGINT or SIGTERM.
func interruptContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
}
