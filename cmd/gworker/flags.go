package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gworker/gworker/core"
)

// flagSet is a flag.FlagSet whose flags have a short and a long name
// (-c/--connection) and that documents them itself, one line per flag.
type flagSet struct {
	fs     *flag.FlagSet
	opts   *commonFlags
	own    []*flagDoc // the command's flags
	common []*flagDoc // the common flags
}

type flagDoc struct {
	names []string // short first
	arg   string   // the value's placeholder; "" for booleans
	help  string
}

// newFlagSet returns a set holding the common flags, bound to common.
func newFlagSet(name string, common *commonFlags) *flagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported by the caller, on one line
	f := &flagSet{fs: fs, opts: common}
	common.register(f)
	return f
}

// add registers v under every name and returns its documentation.
func (f *flagSet) add(v flag.Value, arg, help string, names ...string) *flagDoc {
	for _, n := range names {
		f.fs.Var(v, n, help)
	}
	return f.doc(arg, help, names...)
}

// doc documents a flag handled elsewhere (such as -h).
func (f *flagSet) doc(arg, help string, names ...string) *flagDoc {
	return &flagDoc{names: names, arg: arg, help: help}
}

// flag registers one of the command's own flags.
func (f *flagSet) flag(v flag.Value, arg, help string, names ...string) {
	f.own = append(f.own, f.add(v, arg, help, names...))
}

func (f *flagSet) hasOwnFlags() bool { return len(f.own) > 0 }

func (f *flagSet) printOwnFlags(w io.Writer)    { printFlagDocs(w, f.own) }
func (f *flagSet) printCommonFlags(w io.Writer) { printFlagDocs(w, f.common) }
func (f *flagSet) printFlags(w io.Writer) {
	printFlagDocs(w, append(f.own[:len(f.own):len(f.own)], f.common...))
}

func printFlagDocs(w io.Writer, docs []*flagDoc) {
	tw := newTable(w)
	for _, d := range docs {
		var names []string
		short := "   "
		for _, n := range d.names {
			if len(n) == 1 {
				short = "-" + n + ","
			} else {
				names = append(names, "--"+n)
			}
		}
		spec := strings.Join(names, ", ")
		if d.arg != "" {
			spec += " " + d.arg
		}
		fmt.Fprintf(tw, "  %s %s\t%s\n", short, spec, d.help)
	}
	tw.Flush()
}

func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 0, 3, ' ', 0) }

// parse parses args, allowing flags after positional arguments (gworker add
// ID --queue q); everything after "--" is positional. It returns the
// positional arguments. Errors name the flag the way the user typed it.
func (f *flagSet) parse(args []string) ([]string, error) {
	var pos []string
	for {
		if err := f.fs.Parse(args); err != nil {
			return nil, f.fixFlagNames(err)
		}
		rest := f.fs.Args()
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// fixFlagNames rewrites the flag package's errors in the terms the usage
// shows: "--name" for long names, "--name: what is wrong" for a bad value,
// and the nearest flag for an unknown one.
func (f *flagSet) fixFlagNames(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: "); ok {
		name = strings.TrimLeft(name, "-")
		return fmt.Errorf("unknown flag %s%s", dashed(name), didYouMean(name, f.names(), "--"))
	}
	var value, name, reason string
	if n, _ := fmt.Sscanf(msg, "invalid value %q for flag", &value); n == 1 {
		rest := strings.TrimPrefix(msg[strings.Index(msg, " for flag ")+len(" for flag "):], "-")
		name, reason, _ = strings.Cut(rest, ": ")
		if strings.Contains(reason, strconv.Quote(value)) {
			return fmt.Errorf("%s: %s", dashed(name), reason)
		}
		return fmt.Errorf("%s: invalid value %q: %s", dashed(name), value, reason)
	}
	for _, prefix := range []string{"for flag -", "for -", "flag needs an argument: -"} {
		i := strings.Index(msg, prefix)
		if i < 0 {
			continue
		}
		j := i + len(prefix)
		end := strings.IndexAny(msg[j:], ": ")
		if end < 0 {
			end = len(msg) - j
		}
		if end > 1 && !strings.HasPrefix(msg[j:], "-") {
			msg = msg[:j] + "-" + msg[j:]
		}
		break
	}
	return errors.New(msg)
}

// dashed writes a flag name as the usage does: -c, --connection.
func dashed(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// names returns the long names of every flag of the set, for suggestions.
func (f *flagSet) names() []string {
	var names []string
	f.fs.VisitAll(func(fl *flag.Flag) {
		if len(fl.Name) > 1 {
			names = append(names, fl.Name)
		}
	})
	return names
}

// Flag values. Each rejects bad input with a message saying what is wanted;
// the flag package adds the flag's name.

type stringValue struct{ p *string }

func (v *stringValue) String() string {
	if v == nil || v.p == nil {
		return ""
	}
	return *v.p
}
func (v *stringValue) Set(s string) error { *v.p = s; return nil }

type boolValue struct{ p *bool }

func (v *boolValue) String() string {
	if v == nil || v.p == nil {
		return "false"
	}
	return strconv.FormatBool(*v.p)
}
func (v *boolValue) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return errors.New("want true or false")
	}
	*v.p = b
	return nil
}
func (v *boolValue) IsBoolFlag() bool { return true }

// intValue is an integer within [min, max]; set records that it was given.
type intValue struct {
	p        *int
	min, max int
	set      bool
}

func (v *intValue) String() string {
	if v == nil || v.p == nil {
		return "0"
	}
	return strconv.Itoa(*v.p)
}
func (v *intValue) Set(s string) error {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < v.min || n > v.max {
		return fmt.Errorf("want an integer from %d to %d", v.min, v.max)
	}
	*v.p, v.set = n, true
	return nil
}

// localQueueValue is --local-queue: "auto" (core's adaptive batches, the
// default), "off", or a fixed batch size.
type localQueueValue struct{ p *core.LocalQueueOptions }

func (v *localQueueValue) String() string {
	switch {
	case v == nil || v.p == nil || (!v.p.Disabled && v.p.Size == 0):
		return "auto"
	case v.p.Disabled:
		return "off"
	}
	return strconv.Itoa(v.p.Size)
}

func (v *localQueueValue) Set(s string) error {
	switch s = strings.TrimSpace(s); s {
	case "auto":
		v.p.Disabled, v.p.Size = false, 0
		return nil
	case "off":
		v.p.Disabled, v.p.Size = true, 0
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 1<<20 {
		return fmt.Errorf("want auto, off, or a batch size from 1 to %d", 1<<20)
	}
	v.p.Disabled, v.p.Size = false, n
	return nil
}

// durationValue is a Go duration (1.5s, 200ms). A bare number is refused
// rather than read as milliseconds (graphile-worker's --poll-interval takes
// them): "30" for a sweep threshold is too easily meant as seconds.
type durationValue struct {
	p   *time.Duration
	min time.Duration
}

func (v *durationValue) String() string {
	if v == nil || v.p == nil {
		return "0s"
	}
	return v.p.String()
}
func (v *durationValue) Set(s string) error {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		if _, err := strconv.ParseFloat(strings.TrimSpace(s), 64); err == nil {
			n := strings.TrimSpace(s)
			return fmt.Errorf("%q has no unit; write %sms or %ss", s, n, n)
		}
		return fmt.Errorf("%q is not a duration; write one such as 500ms, 2s or 1m30s", s)
	}
	if d < v.min {
		return fmt.Errorf("must be at least %v", v.min)
	}
	*v.p = d
	return nil
}

// timeValue is an RFC 3339 time.
type timeValue struct{ p *time.Time }

func (v *timeValue) String() string {
	if v == nil || v.p == nil || v.p.IsZero() {
		return ""
	}
	return v.p.Format(time.RFC3339Nano)
}
func (v *timeValue) Set(s string) error {
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(s))
	if err != nil {
		return errors.New("want an RFC 3339 time such as 2030-01-02T15:04:05Z or 2030-01-02T16:04:05+01:00")
	}
	*v.p = t
	return nil
}

// keyModeValue is a job key mode.
type keyModeValue struct{ p *core.JobKeyMode }

func (v *keyModeValue) String() string {
	if v == nil || v.p == nil {
		return ""
	}
	return string(*v.p)
}
func (v *keyModeValue) Set(s string) error {
	switch m := core.JobKeyMode(s); m {
	case core.Replace, core.PreserveRunAt, core.UnsafeDedupe:
		*v.p = m
		return nil
	}
	return fmt.Errorf("want %s, %s or %s", core.Replace, core.PreserveRunAt, core.UnsafeDedupe)
}

// listValue collects a repeatable flag's values.
type listValue struct{ p *[]string }

func (v *listValue) String() string {
	if v == nil || v.p == nil {
		return ""
	}
	b, _ := json.Marshal(*v.p)
	return string(b)
}
func (v *listValue) Set(s string) error {
	if s == "" {
		return errors.New("must not be empty")
	}
	*v.p = append(*v.p, s)
	return nil
}
