package faults

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Outcomes a run records.
const (
	outcomeOK   = "ok"
	outcomeFail = "fail"
)

// runLine is one handler run: "n job_id attempts worker start_ns end_ns
// outcome fetched_ns received_ns". The gworker run task script writes the
// same format, with 0 for the two fetch times, which it cannot know.
type runLine struct {
	N          int64
	JobID      int64
	Attempts   int
	Worker     string
	Start, End time.Time
	Outcome    string
	// Fetched is when the fetch that gave the run its job locked it (the
	// job's locked_at: the start of the fetch's transaction), or zero when
	// unknown.
	Fetched time.Time
	// Received is when the worker had that fetch's answer (its JobsFetched
	// event), so after its commit; zero when unknown.
	Received time.Time
}

func (r runLine) String() string {
	return fmt.Sprintf("%d %d %d %s %d %d %s %d %d\n", r.N, r.JobID, r.Attempts, r.Worker,
		r.Start.UnixNano(), r.End.UnixNano(), r.Outcome, unixNanoOrZero(r.Fetched), unixNanoOrZero(r.Received))
}

func unixNanoOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// fetchCommit bounds when the fetch that gave the run its job committed:
// not before its transaction began (zero when unknown), and before the
// worker had its answer, or at the latest before the handler started.
func (r runLine) fetchCommit() (from, to time.Time) {
	to = r.Start
	if !r.Received.IsZero() && r.Received.Before(to) {
		to = r.Received
	}
	return r.Fetched, to
}

func parseRunLine(s string) (runLine, error) {
	f := strings.Fields(s)
	if len(f) != 9 {
		return runLine{}, fmt.Errorf("%d fields, want 9", len(f))
	}
	var r runLine
	var err error
	ints := make([]int64, 0, 7)
	for _, i := range []int{0, 1, 2, 4, 5, 7, 8} {
		v, perr := strconv.ParseInt(f[i], 10, 64)
		if perr != nil {
			err = fmt.Errorf("field %d: %v", i+1, perr)
			break
		}
		ints = append(ints, v)
	}
	if err != nil {
		return runLine{}, err
	}
	r.N, r.JobID, r.Attempts = ints[0], ints[1], int(ints[2])
	r.Worker, r.Outcome = f[3], f[6]
	r.Start, r.End = time.Unix(0, ints[3]), time.Unix(0, ints[4])
	if ints[5] != 0 {
		r.Fetched = time.Unix(0, ints[5])
	}
	if ints[6] != 0 {
		r.Received = time.Unix(0, ints[6])
	}
	if r.Outcome != outcomeOK && r.Outcome != outcomeFail {
		return runLine{}, fmt.Errorf("outcome %q", r.Outcome)
	}
	return r, nil
}

// loadRuns reads every runs file of dir (runs-*.log).
func loadRuns(dir string) ([]runLine, error) {
	files, err := filepath.Glob(filepath.Join(dir, "runs-*.log"))
	if err != nil {
		return nil, err
	}
	var runs []runLine
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(f)
		for line := 1; sc.Scan(); line++ {
			if strings.TrimSpace(sc.Text()) == "" {
				continue
			}
			r, err := parseRunLine(sc.Text())
			if err != nil {
				f.Close()
				return nil, fmt.Errorf("%s:%d: %v: %q", name, line, err, sc.Text())
			}
			runs = append(runs, r)
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return nil, err
		}
	}
	return runs, nil
}
