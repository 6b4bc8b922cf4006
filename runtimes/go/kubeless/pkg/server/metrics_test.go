package server

import (
	"strings"
	"testing"
	"time"
)

func TestDurationsFallInTheirBuckets(t *testing.T) {
	m := newMetrics()
	m.observe("GET", 5*time.Millisecond, false) // on a bound: le="0.005"
	m.observe("GET", 30*time.Second, true)      // past the last bound: +Inf only
	text := m.render(1)
	for _, line := range []string{
		`function_calls_total{method="GET"} 2`,
		`function_failures_total{method="GET"} 1`,
		`function_duration_seconds_bucket{method="GET",le="0.005"} 1`,
		`function_duration_seconds_bucket{method="GET",le="10.0"} 1`,
		`function_duration_seconds_bucket{method="GET",le="+Inf"} 2`,
		`function_duration_seconds_sum{method="GET"} 30.005`,
		`function_duration_seconds_count{method="GET"} 2`,
		`function_stuck_calls 1`,
	} {
		if !strings.Contains(text, line+"\n") {
			t.Errorf("no line %q in\n%s", line, text)
		}
	}
}

func TestPythonFloat(t *testing.T) {
	for value, want := range map[float64]string{0: "0.0", 1: "1.0", 0.25: "0.25", 2.5e-05: "2.5e-05", 1234567: "1234567.0"} {
		if got := pythonFloat(value); got != want {
			t.Errorf("%v: got %s, want %s", value, got, want)
		}
	}
}
