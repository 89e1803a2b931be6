package main

import (
	"testing"

	"github.com/gworker/gworker/core"
)

func TestLocalQueueFlag(t *testing.T) {
	for _, c := range []struct {
		in   string
		want core.LocalQueueOptions
		str  string
	}{
		{"auto", core.LocalQueueOptions{}, "auto"},
		{"off", core.LocalQueueOptions{Disabled: true}, "off"},
		{" 500 ", core.LocalQueueOptions{Size: 500}, "500"},
	} {
		// Start from another setting, so that each value is seen to set both fields.
		got := core.LocalQueueOptions{Disabled: c.in != "off", Size: 7}
		v := &localQueueValue{p: &got}
		if err := v.Set(c.in); err != nil {
			t.Fatalf("Set(%q): %v", c.in, err)
		}
		if got.Disabled != c.want.Disabled || got.Size != c.want.Size {
			t.Errorf("Set(%q) = %+v, want %+v", c.in, got, c.want)
		}
		if s := v.String(); s != c.str {
			t.Errorf("after Set(%q), String() = %q, want %q", c.in, s, c.str)
		}
	}
	for _, bad := range []string{"0", "-5", "lots", ""} {
		var o core.LocalQueueOptions
		if err := (&localQueueValue{p: &o}).Set(bad); err == nil {
			t.Errorf("Set(%q) accepted", bad)
		}
	}
}
