package main

import (
	"context"
	"flag"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestNoCommandPrintsUsageAndExits2(t *testing.T) {
	t.Parallel()
	r := runCLI(context.Background(), nil)
	if r.code != exitUsage {
		t.Errorf("exit %d, want %d", r.code, exitUsage)
	}
	if !strings.Contains(r.stderr, "Usage:") || r.stdout != "" {
		t.Errorf("want usage on stderr only; stdout %q, stderr %q", r.stdout, r.stderr)
	}
}

func TestHelpListsCommandsAndCommonFlags(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"help"}, {"-h"}, {"--help"}} {
		r := runCLI(context.Background(), nil, args...)
		if r.code != 0 || r.stderr != "" {
			t.Errorf("%v: exit %d, stderr %q", args, r.code, r.stderr)
		}
		for _, want := range []string{"migrate", "add", "run", "help", "-c, --connection", "-s, --schema", "DATABASE_URL", "GRAPHILE_WORKER_SCHEMA"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("%v: usage does not mention %q:\n%s", args, want, r.stdout)
			}
		}
	}
}

func TestCommandHelpDocumentsEveryFlag(t *testing.T) {
	t.Parallel()
	for _, cmd := range commands() {
		for _, args := range [][]string{{"help", cmd.name}, {cmd.name, "-h"}, {cmd.name, "--help"}} {
			r := runCLI(context.Background(), nil, args...)
			if r.code != 0 || r.stderr != "" {
				t.Errorf("%v: exit %d, stderr %q", args, r.code, r.stderr)
			}
			if !strings.HasPrefix(r.stdout, "Usage: gworker "+cmd.name) {
				t.Errorf("%v: output does not start with the usage line:\n%s", args, r.stdout)
			}
			fs := newFlagSet(cmd.name, &commonFlags{})
			cmd.setup(fs)
			fs.fs.VisitAll(func(f *flag.Flag) {
				name := "--" + f.Name
				if len(f.Name) == 1 {
					name = "-" + f.Name + ","
				}
				if !strings.Contains(r.stdout, name) {
					t.Errorf("%v: usage does not document %s:\n%s", args, name, r.stdout)
				}
			})
		}
	}
}

func TestUnknownCommandPrintsUsageAndExits2(t *testing.T) {
	t.Parallel()
	r := runCLI(context.Background(), nil, "frobnicate")
	if r.code != exitUsage {
		t.Errorf("exit %d, want %d", r.code, exitUsage)
	}
	if !strings.HasPrefix(r.stderr, `gworker: unknown command "frobnicate"`) || !strings.Contains(r.stderr, "Usage:") {
		t.Errorf("stderr %q: want the unknown command named, then the usage", r.stderr)
	}
}

func TestHelpForUnknownCommandFails(t *testing.T) {
	t.Parallel()
	r := runCLI(context.Background(), nil, "help", "frobnicate")
	assertOneLineError(t, r, `"frobnicate"`)
}

func TestMissingConnectionNamesTheFlagAndVariable(t *testing.T) {
	t.Parallel()
	for _, cmd := range []string{"migrate", "add"} {
		args := []string{cmd}
		if cmd == "add" {
			args = append(args, "some_task")
		}
		r := runCLI(context.Background(), map[string]string{}, args...)
		assertOneLineError(t, r, "-c/--connection", "DATABASE_URL")
	}
}

func TestUnknownFlagIsNamed(t *testing.T) {
	t.Parallel()
	r := runCLI(context.Background(), nil, "migrate", "--frobnicate")
	assertOneLineError(t, r, "--frobnicate")
	if r.code != exitUsage {
		t.Errorf("exit %d, want %d", r.code, exitUsage)
	}
	r = runCLI(context.Background(), nil, "--frobnicate", "migrate")
	assertOneLineError(t, r, "--frobnicate")
}

func TestFlagsMayFollowArguments(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args      []string
		wantPos   []string
		wantQueue string
	}{
		{[]string{"id", "{}", "--queue", "q"}, []string{"id", "{}"}, "q"},
		{[]string{"--queue=q", "id"}, []string{"id"}, "q"},
		{[]string{"id", "--queue", "q", "{}"}, []string{"id", "{}"}, "q"},
		{[]string{"--queue", "q", "--", "id", "--queue"}, []string{"id", "--queue"}, "q"},
		{[]string{"id", "--", "-1"}, []string{"id", "-1"}, ""},
	}
	for _, tt := range tests {
		var queue string
		fs := newFlagSet("add", &commonFlags{})
		fs.flag(&stringValue{p: &queue}, "NAME", "queue", "queue")
		pos, err := fs.parse(tt.args)
		if err != nil {
			t.Errorf("%q: %v", tt.args, err)
			continue
		}
		if !slices.Equal(pos, tt.wantPos) || queue != tt.wantQueue {
			t.Errorf("%q: positional %q, queue %q; want %q, %q", tt.args, pos, queue, tt.wantPos, tt.wantQueue)
		}
	}
}

func TestDurationFlagTakesMillisecondsToo(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"2s": "2s", "250ms": "250ms", "1500": "1.5s"} {
		var d time.Duration
		if err := (&durationValue{p: &d}).Set(in); err != nil || d.String() != want {
			t.Errorf("Set(%q) = %v, %v; want %s", in, d, err, want)
		}
	}
	var d time.Duration
	if err := (&durationValue{p: &d}).Set("soon"); err == nil {
		t.Error(`Set("soon") succeeded`)
	}
}

func TestErrorsFitOnOneLine(t *testing.T) {
	t.Parallel()
	got := oneLine("gworker: invalid a: x\ngworker: invalid b: y\nwrapped: gworker: z\n")
	if want := "invalid a: x; invalid b: y; wrapped: z"; got != want {
		t.Errorf("oneLine = %q, want %q", got, want)
	}
}
