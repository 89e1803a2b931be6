package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/gworker/gworker/core"
)

func cancelCommand() *command {
	return &command{
		name:     "cancel",
		synopsis: "[flags] ID",
		summary:  "cancel a job for good, even while it runs",
		help: `
Marks the job permanently failed with the reason as last_error, so it never
runs again. If a gworker worker runs it right now, that worker cancels the
handler's context (an executable task gets SIGTERM) and records the job as
failed with the reason. Prints the job as JSON.`,
		setup: func(fs *flagSet) action {
			reason := ""
			key := false
			fs.flag(&stringValue{p: &reason}, "TEXT", "why; stored in last_error as \"Cancelled: TEXT\"", "reason")
			fs.flag(&boolValue{p: &key}, "", "ID is a job key rather than a job id", "key")
			return func(ctx context.Context, e *env, args []string) error {
				if len(args) != 1 {
					return usagef("cancel takes one job id (or, with --key, a job key)")
				}
				return cancelJob(ctx, e, fs.opts, args[0], key, reason)
			}
		},
	}
}

func cancelJob(ctx context.Context, e *env, opts *commonFlags, target string, byKey bool, reason string) error {
	db, err := opts.open(ctx, e)
	if err != nil {
		return err
	}
	defer db.Close()
	u, err := core.NewUtils(db, core.UtilsOptions{Schema: opts.schemaName(e), Logger: opts.logger(e, slog.LevelWarn)})
	if err != nil {
		return err
	}
	var job *core.Job
	if byKey {
		job, err = u.CancelJobByKey(ctx, target, reason)
	} else {
		id, perr := strconv.ParseInt(target, 10, 64)
		if perr != nil {
			return usagef("job id %q is not a number (use --key for a job key)", target)
		}
		job, err = u.CancelJob(ctx, id, reason)
	}
	if err != nil {
		return err
	}
	out, err := json.Marshal(newJobJSON(job))
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(e.stdout, "%s\n", out)
	return err
}
