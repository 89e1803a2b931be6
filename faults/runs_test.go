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
// outcome fetched_ns". The gworker run task script writes the same format,
// with 0 for fetched_ns, which it cannot know.
type runLine struct {
	N          int64
	JobID      int64
	Attempts   int
	Worker     string
	Start, End time.Time
	Outcome    string
	// Fetched is when the fetch that gave the run its job locked it (the
	// job's locked_at), or zero when unknown.
	Fetched time.Time
}

func (r runLine) String() string {
	fetched := int64(0)
	if !r.Fetched.IsZero() {
		fetched = r.Fetched.UnixNano()
	}
	return fmt.Sprintf("%d %d %d %s %d %d %s %d\n", r.N, r.JobID, r.Attempts, r.Worker,
		r.Start.UnixNano(), r.End.UnixNano(), r.Outcome, fetched)
}

// fetchedBy is when the run's job was fetched, at the latest.
func (r runLine) fetchedBy() time.Time {
	if r.Fetched.IsZero() {
		return r.Start
	}
	return r.Fetched
}

func parseRunLine(s string) (runLine, error) {
	f := strings.Fields(s)
	if len(f) != 8 {
		return runLine{}, fmt.Errorf("%d fields, want 8", len(f))
	}
	var r runLine
	var err error
	ints := make([]int64, 0, 5)
	for _, i := range []int{0, 1, 2, 4, 5, 7} {
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
