package anyslice

import (
	"strconv"
	"testing"
)

func TestMapReplacesOnlyWhatFTakesAndCopiesOnWrite(t *testing.T) {
	atoi := func(v any) (any, bool) {
		s, ok := v.(string)
		if !ok {
			return nil, false
		}
		n, err := strconv.Atoi(s)
		return n, err == nil
	}
	in := []any{1, "2", "x", nil}
	out := Map(in, atoi)
	if out[1] != 2 || out[0] != 1 || out[2] != "x" || out[3] != nil {
		t.Fatalf("Map = %v", out)
	}
	if in[1] != "2" {
		t.Fatalf("Map changed its input: %v", in)
	}
	same := []any{1, "x"}
	if got := Map(same, atoi); &got[0] != &same[0] {
		t.Fatal("Map copied a slice it did not change")
	}
}
