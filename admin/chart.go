package admin

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gworker/gworker/core"
)

// The chart's drawing area, in SVG user units (the SVG scales to its box).
const (
	chartW, chartH           = 640.0, 180.0
	chartLeft, chartRight    = 48.0, 8.0
	chartTop, chartBottom    = 10.0, 22.0
	chartColors              = 8 // s0..s7 in admin.css
	chartSeriesMax           = chartColors
	chartOtherName           = "(others)"
	throughputTitleTask      = "Jobs per second, by task"
	throughputTitleWorker    = "Jobs per second, by worker"
	secondsPerThroughputSlot = float64(core.ThroughputBucket / time.Second)
)

// chart is a line chart of jobs per second over the throughput window,
// drawn server-side as SVG so that it needs no script.
type chart struct {
	Title  string
	Width  float64
	Height float64
	Series []chartSeries
	YTicks []chartTick
	XTicks []chartTick
	Left   float64
	Right  float64
	Top    float64
	Bottom float64
}

type chartSeries struct {
	Name      string
	Class     string
	Points    string // the polyline's points
	Completed int64
	Failed    int64
	Last      string // the latest bucket's rate, formatted
}

type chartTick struct {
	Pos    float64
	Label  string
	Anchor string // text-anchor: the end labels stay inside the box
}

// throughputCharts draws tp by task and by worker.
func throughputCharts(tp core.Throughput) (byTask, byWorker chart) {
	return buildChart(throughputTitleTask, tp, func(p core.ThroughputPoint) string { return p.Task }),
		buildChart(throughputTitleWorker, tp, func(p core.ThroughputPoint) string { return p.WorkerID })
}

func buildChart(title string, tp core.Throughput, key func(core.ThroughputPoint) string) chart {
	c := chart{Title: title, Width: chartW, Height: chartH, Left: chartLeft, Right: chartW - chartRight,
		Top: chartTop, Bottom: chartH - chartBottom}
	slots := int(tp.Now.Sub(tp.Since)/core.ThroughputBucket) + 1
	if slots < 2 {
		slots = 2
	}
	type acc struct {
		counts            []float64
		completed, failed int64
	}
	series := map[string]*acc{}
	for _, p := range tp.Points {
		i := int(p.Bucket.Sub(tp.Since) / core.ThroughputBucket)
		if i < 0 || i >= slots {
			continue
		}
		k := key(p)
		a := series[k]
		if a == nil {
			a = &acc{counts: make([]float64, slots)}
			series[k] = a
		}
		a.counts[i] += float64(p.Completed + p.Failed)
		a.completed += p.Completed
		a.failed += p.Failed
	}
	// The busiest series get their own line; the rest share one.
	names := make([]string, 0, len(series))
	for k := range series {
		names = append(names, k)
	}
	slices.SortFunc(names, func(a, b string) int {
		ta, tb := series[a].completed+series[a].failed, series[b].completed+series[b].failed
		if ta != tb {
			return int(tb - ta)
		}
		return strings.Compare(a, b)
	})
	if len(names) > chartSeriesMax {
		other := &acc{counts: make([]float64, slots)}
		for _, k := range names[chartSeriesMax-1:] {
			for i, v := range series[k].counts {
				other.counts[i] += v
			}
			other.completed += series[k].completed
			other.failed += series[k].failed
		}
		names = append(names[:chartSeriesMax-1], chartOtherName)
		series[chartOtherName] = other
	}
	top := 0.0
	for _, k := range names {
		for _, v := range series[k].counts {
			top = max(top, v/secondsPerThroughputSlot)
		}
	}
	top = niceCeil(top)
	x := func(i int) float64 { return c.Left + (c.Right-c.Left)*float64(i)/float64(slots-1) }
	y := func(rate float64) float64 { return c.Bottom - (c.Bottom-c.Top)*rate/top }
	for i, k := range names {
		a := series[k]
		var pts strings.Builder
		for j, v := range a.counts {
			fmt.Fprintf(&pts, "%.1f,%.1f ", x(j), y(v/secondsPerThroughputSlot))
		}
		c.Series = append(c.Series, chartSeries{Name: k, Class: "s" + strconv.Itoa(i%chartColors), Points: strings.TrimSpace(pts.String()),
			Completed: a.completed, Failed: a.failed, Last: formatRate(a.counts[slots-1] / secondsPerThroughputSlot)})
	}
	for _, f := range []float64{0, 0.5, 1} {
		c.YTicks = append(c.YTicks, chartTick{Pos: y(top * f), Label: formatRate(top * f), Anchor: "end"})
	}
	// The window starts at a bucket's start, up to a bucket before
	// now - window: label it by the window asked for.
	minutes := int(tp.Now.Sub(tp.Since) / time.Minute)
	for _, f := range []float64{0, 0.5, 1} {
		label, anchor := "now", "end"
		if ago := int(math.Round(float64(minutes) * (1 - f))); ago > 0 {
			label, anchor = "−"+strconv.Itoa(ago)+" min", "middle"
		}
		if f == 0 {
			anchor = "start"
		}
		c.XTicks = append(c.XTicks, chartTick{Pos: c.Left + (c.Right-c.Left)*f, Label: label, Anchor: anchor})
	}
	return c
}

// niceCeil rounds a chart's top up to 1, 2 or 5 times a power of ten, and
// to at least 1 job/s so that an idle chart has a scale.
func niceCeil(v float64) float64 {
	if v <= 1 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func formatRate(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v < 10:
		return strconv.FormatFloat(v, 'f', 2, 64)
	case v < 100:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}
