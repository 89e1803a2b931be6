package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"time"

	"github.com/gworker/gworker/cronspec"
)

// defaultCrontabFile is the crontab run uses when it exists and --crontab is
// not given, as graphile-worker does.
const defaultCrontabFile = "./crontab"

// defaultCronCount is how many fire times cron check shows per entry.
const defaultCronCount = 5

func cronCommand() *command {
	return &command{
		name:     "cron",
		synopsis: "check FILE [--from TIME] [--count N] [--json] | list [--json]",
		summary:  "check a crontab and show when its entries fire; list the known entries",
		help: `
"cron list" lists the crontab entries the database knows (graphile-worker's
known_crontabs: every entry a worker scheduled, Node's included), when each
was first seen and when it last ran (UTC); --json prints a JSON array of
{"identifier", "known_since", "last_execution"}.

"cron check" reads the crontab FILE (graphile-worker's format; gworker also
takes the tz option) and prints, for each entry, its identifier, its task and
the next N times it fires strictly after TIME, in RFC 3339 UTC. It needs no
database.

When the file has errors, each is printed on standard error with its line and
column, and the exit status is 1; with --json, standard output also gets
{"file", "errors": [{"line", "column", "message"}], "truncated"}.`,
		setup: func(fs *flagSet) action {
			o := cronCheckOptions{count: defaultCronCount}
			fs.flag(&timeValue{p: &o.from}, "TIME", "show fire times strictly after TIME, RFC 3339 (default: now)", "from")
			fs.flag(&intValue{p: &o.count, min: 1, max: 10000}, "N", fmt.Sprintf("how many fire times to show per entry (default: %d)", defaultCronCount), "count")
			fs.flag(&boolValue{p: &o.json}, "", `print one JSON array of {"identifier", "task", "next": [...]} objects`, "json")
			return func(ctx context.Context, e *env, args []string) error {
				switch {
				case len(args) == 0:
					return usagef("cron needs a subcommand: check FILE, or list")
				case args[0] == "list":
					if len(args) > 1 {
						return usagef("cron list takes no arguments, got %q", args[1])
					}
					return cronList(ctx, e, fs.opts, o.json)
				case args[0] != "check":
					return usagef("unknown cron subcommand %q; want check or list%s", args[0], didYouMean(args[0], []string{"check", "list"}, ""))
				case len(args) != 2:
					return usagef("cron check takes one FILE, got %d arguments", len(args)-1)
				}
				if o.from.IsZero() {
					o.from = time.Now()
				}
				return cronCheck(e, args[1], &o)
			}
		},
	}
}

type cronCheckOptions struct {
	from  time.Time
	count int
	json  bool
}

// cronEntry is an entry as cron check --json prints it.
type cronEntry struct {
	Identifier string   `json:"identifier"`
	Task       string   `json:"task"`
	Next       []string `json:"next"`
}

// cronErrors is what cron check --json prints for a crontab with errors.
type cronErrors struct {
	File      string      `json:"file"`
	Errors    []cronError `json:"errors"`
	Truncated bool        `json:"truncated"`
}

type cronError struct {
	Line    int    `json:"line"`
	Column  int    `json:"column"`
	Message string `json:"message"`
}

func writeCronErrorsJSON(w io.Writer, file string, perr *cronspec.ParseError) error {
	out := cronErrors{File: file, Errors: make([]cronError, len(perr.Errors)), Truncated: perr.Truncated}
	for i, le := range perr.Errors {
		out.Errors[i] = cronError{Line: le.Line, Column: le.Column, Message: le.Msg}
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func cronCheck(e *env, file string, o *cronCheckOptions) error {
	text, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("read crontab: %w", err)
	}
	crontab, err := cronspec.Parse(string(text))
	var perr *cronspec.ParseError
	if errors.As(err, &perr) {
		for _, le := range perr.Errors {
			fmt.Fprintf(e.stderr, "%s: %v\n", file, le)
		}
		if perr.Truncated {
			fmt.Fprintf(e.stderr, "%s: too many errors: only the first %d are listed\n", file, len(perr.Errors))
		}
		if o.json {
			if err := writeCronErrorsJSON(e.stdout, file, perr); err != nil {
				return err
			}
		}
		return fmt.Errorf("crontab %s has errors", file)
	}
	if err != nil {
		return fmt.Errorf("crontab %s: %w", file, err)
	}

	entries := make([]cronEntry, len(crontab))
	for i, ce := range crontab {
		next := []string{}
		t := o.from
		for range o.count {
			if t = ce.Schedule.Next(t); t.IsZero() {
				break // a date that does not exist, such as February 30
			}
			next = append(next, t.UTC().Format(time.RFC3339))
		}
		entries[i] = cronEntry{Identifier: ce.Identifier, Task: ce.Task, Next: next}
	}
	if o.json {
		enc := json.NewEncoder(e.stdout)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		return enc.Encode(entries)
	}
	if len(entries) == 0 {
		fmt.Fprintf(e.stdout, "%s has no entries\n", file)
		return nil
	}
	tw := newTable(e.stdout)
	fmt.Fprintln(tw, "IDENTIFIER\tTASK\tNEXT (UTC)")
	for _, ce := range entries {
		if len(ce.Next) == 0 {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", ce.Identifier, ce.Task, "never")
			continue
		}
		for i, t := range ce.Next {
			if i == 0 {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", ce.Identifier, ce.Task, t)
			} else {
				fmt.Fprintf(tw, "\t\t%s\n", t)
			}
		}
	}
	return tw.Flush()
}

// loadCrontab returns the crontab text run schedules: file's when given (it
// must exist), else defaultFile's when it exists, else "". With once, cron
// does not run: the default file is not read and --crontab is refused.
func loadCrontab(file, defaultFile string, once bool, log *slog.Logger) (string, error) {
	explicit := file != ""
	if once {
		if explicit {
			return "", usagef("--crontab cannot be used with --once: cron runs only without --once, as in graphile-worker")
		}
		return "", nil
	}
	if !explicit {
		file = defaultFile
	}
	text, err := os.ReadFile(file)
	if err != nil {
		if !explicit && errors.Is(err, fs.ErrNotExist) {
			return "", nil
		}
		return "", fmt.Errorf("read crontab: %w", err)
	}
	crontab, err := cronspec.Parse(string(text))
	if err != nil {
		return "", fmt.Errorf("crontab %s: %w", file, err)
	}
	log.Info("gworker: cron entries loaded", slog.String("crontab", file), slog.Int("entries", len(crontab)))
	return string(text), nil
}
