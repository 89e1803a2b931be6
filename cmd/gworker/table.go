package main

import (
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// terminalWidth is the width tables are cut to: an 80-column terminal.
const terminalWidth = 80

// fitTable prints rows under header in columns two spaces apart, each cut
// to its cap (0: no cap) and the last one to what is left of width, so
// that a line never wraps. Cut cells end with "…".
func fitTable(w io.Writer, header []string, rows [][]string, caps []int, width int) error {
	widths := make([]int, len(header))
	for _, row := range append([][]string{header}, rows...) {
		for i, cell := range row {
			n := utf8.RuneCountInString(cell)
			if caps[i] > 0 {
				n = min(n, caps[i])
			}
			widths[i] = max(widths[i], n)
		}
	}
	used := 0
	for _, n := range widths[:len(widths)-1] {
		used += n + 2
	}
	widths[len(widths)-1] = max(width-used, 8)
	var b strings.Builder
	for _, row := range append([][]string{header}, rows...) {
		b.Reset()
		for i, cell := range row {
			cell = cut(cell, widths[i])
			b.WriteString(cell)
			if i < len(row)-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-utf8.RuneCountInString(cell)+2))
			}
		}
		if _, err := fmt.Fprintln(w, strings.TrimRight(b.String(), " ")); err != nil {
			return err
		}
	}
	return nil
}

// cut shortens s to n characters, ending with "…" when it did; newlines
// become spaces so that a cell stays on its line.
func cut(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:max(n-1, 0)]) + "…"
}

// ago writes how far t is from now, compactly: "12s ago", "in 5m",
// "3h ago", "2d ago".
func ago(t, now time.Time) string {
	d := now.Sub(t)
	if d < 0 {
		return "in " + shortDuration(-d)
	}
	return shortDuration(d) + " ago"
}

func shortDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d/time.Hour))
	}
	return fmt.Sprintf("%dd", int(d/(24*time.Hour)))
}

// orDash writes "" as "-", so that an empty cell is visibly empty.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
