package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/gworker/gworker/core"
)

func versionCommand() *command {
	return &command{
		name:     "version",
		synopsis: "",
		summary:  "print gworker's version, commit and Go version",
		help: `
Prints the module version of this gworker (or "(devel)" for a build from a
checkout), the commit it was built from (with "+dirty" when the checkout had
uncommitted changes) and its time, the Go version that built it, and the
graphile-worker migration it brings schemas to. "gworker --version" prints
the same. It needs no database.`,
		setup: func(fs *flagSet) action {
			return func(ctx context.Context, e *env, args []string) error {
				if len(args) > 0 {
					return usagef("version takes no arguments, got %q", args[0])
				}
				return printVersion(e)
			}
		},
	}
}

// buildInfo is what the binary records about its own build.
type buildInfo struct {
	version, commit, commitTime, goVersion string
	dirty                                  bool
}

func readBuildInfo() buildInfo {
	b := buildInfo{version: "(unknown)", goVersion: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	if bi.Main.Version != "" {
		b.version = bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			b.commit = s.Value
		case "vcs.time":
			b.commitTime = s.Value
		case "vcs.modified":
			b.dirty = s.Value == "true"
		}
	}
	return b
}

func printVersion(e *env) error {
	b := readBuildInfo()
	commit := "unknown (built without VCS information)"
	if b.commit != "" {
		commit = b.commit
		if b.dirty {
			commit += "+dirty"
		}
		if b.commitTime != "" {
			commit += " (" + b.commitTime + ")"
		}
	}
	_, err := fmt.Fprintf(e.stdout, "gworker %s\ncommit: %s\ngo: %s\ngraphile-worker schema: migration %d (graphile-worker 0.18)\n",
		b.version, commit, b.goVersion, core.LatestMigration)
	return err
}
