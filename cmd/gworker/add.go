package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"time"

	"github.com/gworker/gworker/core"
)

func addCommand() *command {
	return &command{
		name:     "add",
		synopsis: "[flags] IDENTIFIER [JSON]",
		summary:  "add a job",
		help: `
Adds a job for the task IDENTIFIER with the payload JSON (default {}) and
prints the job as one JSON object, the same as a line of gworker jobs
--json (see gworker help jobs): the columns of the jobs view (id,
queue_name, task_identifier, payload, run_at, attempts, max_attempts, key,
priority, flags, revision, ...) and state. The schema must exist (gworker
migrate).`,
		setup: func(fs *flagSet) action {
			var o addOptions
			fs.flag(&stringValue{p: &o.queue}, "NAME", "named queue: its jobs run one at a time, in order (default: none, run in parallel)", "queue")
			fs.flag(&timeValue{p: &o.runAt}, "TIME", "earliest time to run, RFC 3339, e.g. 2030-01-02T15:04:05Z (default: now)", "run-at")
			fs.flag(&intValue{p: &o.maxAttempts, min: 1, max: math.MaxInt16}, "N", fmt.Sprintf("attempts before the job fails for good (default: %d)", core.DefaultMaxAttempts), "max-attempts")
			fs.flag(&stringValue{p: &o.key}, "KEY", "job key, to replace, deduplicate or remove the job later", "key")
			fs.flag(&keyModeValue{p: &o.keyMode}, "MODE", "when a job has the key already: replace, preserve_run_at or unsafe_dedupe (default: replace)", "key-mode")
			fs.flag(&intValue{p: &o.priority, min: math.MinInt16, max: math.MaxInt16}, "N", "priority; a lower number runs first (default: 0)", "priority")
			fs.flag(&listValue{p: &o.flags}, "FLAG", "a flag to store with the job, which workers may be told to skip; repeatable", "flag")
			return func(ctx context.Context, e *env, args []string) error {
				return add(ctx, e, fs.opts, &o, args)
			}
		},
	}
}

type addOptions struct {
	queue       string
	runAt       time.Time
	maxAttempts int
	key         string
	keyMode     core.JobKeyMode
	priority    int
	flags       []string
}

func add(ctx context.Context, e *env, opts *commonFlags, o *addOptions, args []string) error {
	switch {
	case len(args) == 0:
		return usagef("missing the task IDENTIFIER")
	case len(args) > 2:
		return usagef("too many arguments (%d): want IDENTIFIER and at most one JSON payload; quote the payload", len(args))
	case args[0] == "":
		return usagef("the task IDENTIFIER must not be empty")
	}
	identifier := args[0]
	payload := json.RawMessage("{}")
	if len(args) == 2 {
		payload = json.RawMessage(args[1])
		var v any
		if err := json.Unmarshal(payload, &v); err != nil {
			return usagef("invalid JSON payload %s: %v", quoteShort(args[1]), err)
		}
	}
	if o.keyMode != "" && o.key == "" {
		return usagef("--key-mode needs --key")
	}
	spec := &core.JobSpec{
		QueueName:   o.queue,
		RunAt:       o.runAt,
		MaxAttempts: o.maxAttempts,
		Priority:    o.priority,
		JobKey:      o.key,
		JobKeyMode:  o.keyMode,
		Flags:       o.flags,
	}
	schema := opts.schemaName(e)
	db, err := opts.open(ctx, e)
	if err != nil {
		return err
	}
	defer db.Close()
	u, err := core.NewUtils(db, core.UtilsOptions{Schema: schema, Logger: opts.logger(e, slog.LevelWarn)})
	if err != nil {
		return err
	}
	job, err := u.AddRawJob(ctx, identifier, payload, spec)
	if err != nil {
		return addError(schema, err)
	}
	out, err := json.Marshal(job) // core.Job's one encoding, as the admin API's
	if err != nil {
		return fmt.Errorf("encode job %d: %w", job.ID, err)
	}
	_, err = fmt.Fprintf(e.stdout, "%s\n", out)
	return err
}

// addFlagNames maps core's field names to the arguments a user typed.
var addFlagNames = map[string]string{
	"identifier":          "IDENTIFIER",
	"payload":             "JSON payload",
	"JobSpec.QueueName":   "--queue",
	"JobSpec.MaxAttempts": "--max-attempts",
	"JobSpec.Priority":    "--priority",
	"JobSpec.JobKey":      "--key",
	"JobSpec.JobKeyMode":  "--key-mode",
}

// addError rewrites core's errors in the command line's terms.
func addError(schema string, err error) error {
	var ve *core.ValidationError
	if errors.As(err, &ve) {
		name, ok := addFlagNames[ve.Field]
		if strings.HasPrefix(ve.Field, "JobSpec.Flags[") {
			name, ok = "--flag", true
		}
		if ok {
			if ve.Value == nil {
				return usagef("invalid %s: %s", name, ve.Reason)
			}
			return usagef("invalid %s %s: %s", name, quoteShort(fmt.Sprint(ve.Value)), ve.Reason)
		}
		return err
	}
	return schemaError(schema, err)
}

// sqlState returns a server error's SQLSTATE code, or "".
func sqlState(err error) string {
	var s interface{ SQLState() string }
	if errors.As(err, &s) {
		return s.SQLState()
	}
	return ""
}

// quoteShort quotes s for an error message, shortened if long.
func quoteShort(s string) string {
	if r := []rune(s); len(r) > 60 {
		s = string(r[:57]) + "..."
	}
	return fmt.Sprintf("%q", s)
}
