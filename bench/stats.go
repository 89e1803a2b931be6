package main

import (
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// percentile returns the p-th percentile (0..100) of xs by linear
// interpolation between the closest ranks; NaN for no samples.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	rank := p / 100 * float64(len(s)-1)
	lo := int(math.Floor(rank))
	hi := int(math.Ceil(rank))
	return s[lo] + (s[hi]-s[lo])*(rank-float64(lo))
}

func median(xs []float64) float64 { return percentile(xs, 50) }

// resultLine matches the line every drain and insert run prints.
var resultLine = regexp.MustCompile(`(?m)^jobs=(\d+) seconds=([0-9.]+) jobs_per_sec=([0-9.]+)$`)

// parseResult reads jobs and seconds from a run's output.
func parseResult(out string) (jobs int, seconds float64, err error) {
	m := resultLine.FindStringSubmatch(out)
	if m == nil {
		return 0, 0, fmt.Errorf("no line jobs=N seconds=S jobs_per_sec=R in the output %q", tailString(out, 300))
	}
	jobs, _ = strconv.Atoi(m[1])
	seconds, _ = strconv.ParseFloat(m[2], 64)
	if seconds <= 0 {
		return 0, 0, fmt.Errorf("seconds=%s is not positive", m[2])
	}
	return jobs, seconds, nil
}

var latencyLine = regexp.MustCompile(`(?m)^latency_ms=([0-9.,]+)$`)

// parseLatencies reads the latency_ms=a,b,... line.
func parseLatencies(out string) ([]float64, error) {
	m := latencyLine.FindStringSubmatch(out)
	if m == nil {
		return nil, fmt.Errorf("no line latency_ms=... in the output %q", tailString(out, 300))
	}
	var ms []float64
	for _, f := range strings.Split(m[1], ",") {
		v, err := strconv.ParseFloat(f, 64)
		if err != nil {
			return nil, fmt.Errorf("latency %q: %w", f, err)
		}
		ms = append(ms, v)
	}
	return ms, nil
}

func tailString(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// metric is one measured quantity, such as drain throughput at N=20000.
type metric struct {
	name string
	unit string
}

// results holds every sample of every metric and contender, in the order
// they were first recorded.
type results struct {
	metrics []metric
	rows    map[string][]string // metric name -> contenders in order
	samples map[[2]string][]float64
	notes   map[[2]string][]string // failures, by metric and contender
}

func newResults() *results {
	return &results{rows: map[string][]string{}, samples: map[[2]string][]float64{}, notes: map[[2]string][]string{}}
}

func (r *results) touch(m metric, contender string) [2]string {
	if _, ok := r.rows[m.name]; !ok {
		r.metrics = append(r.metrics, m)
	}
	if !slices.Contains(r.rows[m.name], contender) {
		r.rows[m.name] = append(r.rows[m.name], contender)
	}
	return [2]string{m.name, contender}
}

func (r *results) add(m metric, contender string, v float64) {
	k := r.touch(m, contender)
	r.samples[k] = append(r.samples[k], v)
}

func (r *results) fail(m metric, contender string, err error) {
	k := r.touch(m, contender)
	r.notes[k] = append(r.notes[k], err.Error())
}

// median returns the median of a metric's samples for a contender.
func (r *results) median(metricName, contender string) (float64, bool) {
	s := r.samples[[2]string{metricName, contender}]
	if len(s) == 0 {
		return 0, false
	}
	return median(s), true
}

// baselines are the contenders the ratio column compares with: the tuned
// gworker where it ran, else gworker with core's defaults.
var baselines = []string{"gworker-tuned", "gworker"}

// write prints the table: per metric and contender the median, the range
// and the ratio to the baseline's median.
func (r *results) write(w io.Writer) {
	fmt.Fprintln(w, "| metric | contender | median | range (min–max) | runs | × gworker-tuned |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|")
	for _, m := range r.metrics {
		var base float64
		haveBase := false
		for _, c := range baselines {
			if base, haveBase = r.median(m.name, c); haveBase {
				break
			}
		}
		for _, c := range r.rows[m.name] {
			k := [2]string{m.name, c}
			s := r.samples[k]
			med, rng, ratio := "—", "—", "—"
			if len(s) > 0 {
				med = formatValue(median(s), m.unit)
				rng = formatValue(slices.Min(s), "") + "–" + formatValue(slices.Max(s), "")
				if haveBase && base != 0 {
					ratio = fmt.Sprintf("%.2f", median(s)/base)
				}
			}
			runs := strconv.Itoa(len(s))
			failed, skipped := 0, 0
			for _, n := range r.notes[k] {
				if strings.HasPrefix(n, "skipped") {
					skipped++
				} else {
					failed++
				}
			}
			if failed > 0 {
				runs += fmt.Sprintf(" (%d failed)", failed)
			}
			if skipped > 0 && len(s) == 0 {
				runs = "skipped"
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", m.name, c, med, rng, runs, ratio)
		}
	}
}

// writeFailures lists what went wrong, if anything.
func (r *results) writeFailures(w io.Writer) {
	for _, m := range r.metrics {
		for _, c := range r.rows[m.name] {
			for _, n := range r.notes[[2]string{m.name, c}] {
				fmt.Fprintf(w, "- %s, %s: %s\n", m.name, c, n)
			}
		}
	}
}

// formatValue prints v with a precision suited to its size and its unit.
func formatValue(v float64, unit string) string {
	var s string
	switch {
	case math.IsNaN(v):
		return "—"
	case math.Abs(v) >= 1000:
		s = groupThousands(int64(math.Round(v)))
	case math.Abs(v) >= 100:
		s = strconv.FormatFloat(v, 'f', 0, 64)
	case math.Abs(v) >= 10:
		s = strconv.FormatFloat(v, 'f', 1, 64)
	default:
		s = strconv.FormatFloat(v, 'f', 2, 64)
	}
	if unit != "" {
		s += " " + unit
	}
	return s
}

// groupThousands writes n with thin separators: 12,345.
func groupThousands(n int64) string {
	neg := n < 0
	if neg {
		n = -n
	}
	d := strconv.FormatInt(n, 10)
	var b strings.Builder
	for i, c := range d {
		if i > 0 && (len(d)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// protoLine matches bench/protoheld's check line.
var protoLine = regexp.MustCompile(`(?m)^distinct=(\d+) duplicates=(\d+) remaining=(\d+)$`)

// checkProto reads bench/protoheld's check line: every one of the n jobs
// ran exactly once and no row is left.
func checkProto(out string, n int) error {
	m := protoLine.FindStringSubmatch(out)
	if m == nil {
		return fmt.Errorf("no line distinct=D duplicates=X remaining=Y in the output %q", tailString(out, 300))
	}
	distinct, _ := strconv.Atoi(m[1])
	dups, _ := strconv.Atoi(m[2])
	left, _ := strconv.Atoi(m[3])
	if distinct != n || dups != 0 || left != 0 {
		return fmt.Errorf("%d distinct jobs ran (want %d), %d duplicate runs, %d rows left", distinct, n, dups, left)
	}
	return nil
}
