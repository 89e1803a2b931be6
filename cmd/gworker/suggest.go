package main

import "strings"

// nearest returns the candidate closest to name by edit distance, or ""
// when none is close enough to be what the user meant: at most a third of
// the longer word may differ (at least one edit), so "migarte" finds
// migrate but "frobnicate" finds nothing. A candidate that name is a prefix
// of ("mig" for migrate) counts as close.
func nearest(name string, candidates []string) string {
	best, bestDist := "", -1
	for _, c := range candidates {
		d := editDistance(strings.ToLower(name), strings.ToLower(c))
		if strings.HasPrefix(c, name) && len(name) >= 2 {
			d = min(d, 1)
		}
		limit := max(1, max(len(name), len(c))/3)
		if d <= limit && (bestDist < 0 || d < bestDist) {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance is the optimal string alignment distance between a and b:
// insertions, deletions, substitutions and swaps of two adjacent letters
// (the commonest typo) each cost one.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	// d[i][j] is the distance between ra[:i] and rb[:j].
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

// didYouMean returns "; did you mean X?" for the nearest candidate, or "".
func didYouMean(name string, candidates []string, prefix string) string {
	if s := nearest(name, candidates); s != "" {
		return "; did you mean " + prefix + s + "?"
	}
	return ""
}
