package server

import (
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The histogram's upper bounds, as the Python runtime writes them (Python's repr of its float bounds).
var durationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
var durationBucketLabels = []string{"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "5.0",
	"10.0", "+Inf"}

type methodStats struct {
	calls, failures uint64
	durationSum     float64
	bucketCounts    [12]uint64 // per bucket, not cumulative; the last is +Inf
}

// metrics counts calls of the function per HTTP method, with the names and labels of every runtime of the
// project: function_calls_total, function_failures_total and function_duration_seconds{method}.
type metrics struct {
	mu       sync.Mutex
	byMethod map[string]*methodStats
}

func newMetrics() *metrics {
	return &metrics{byMethod: make(map[string]*methodStats)}
}

func (m *metrics) observe(method string, duration time.Duration, failed bool) {
	seconds := duration.Seconds()
	bucket := sort.SearchFloat64s(durationBuckets, seconds) // the first bound >= seconds, or +Inf
	m.mu.Lock()
	stats := m.byMethod[method]
	if stats == nil {
		stats = &methodStats{}
		m.byMethod[method] = stats
	}
	stats.calls++
	if failed {
		stats.failures++
	}
	stats.durationSum += seconds
	stats.bucketCounts[bucket]++
	m.mu.Unlock()
}

// render writes the Prometheus text exposition (version 0.0.4).
func (m *metrics) render(stuckCalls int64) string {
	m.mu.Lock()
	methods := make([]string, 0, len(m.byMethod))
	snapshot := make(map[string]methodStats, len(m.byMethod))
	for method, stats := range m.byMethod {
		methods = append(methods, method)
		snapshot[method] = *stats
	}
	m.mu.Unlock()
	sort.Strings(methods)

	var b strings.Builder
	b.WriteString("# HELP function_calls_total Number of calls to the function.\n" +
		"# TYPE function_calls_total counter\n")
	for _, method := range methods {
		b.WriteString(`function_calls_total{method="` + method + `"} ` + count(snapshot[method].calls) + "\n")
	}
	b.WriteString("# HELP function_failures_total Number of calls that raised or timed out.\n" +
		"# TYPE function_failures_total counter\n")
	for _, method := range methods {
		b.WriteString(`function_failures_total{method="` + method + `"} ` + count(snapshot[method].failures) + "\n")
	}
	b.WriteString("# HELP function_duration_seconds Duration of function calls.\n" +
		"# TYPE function_duration_seconds histogram\n")
	for _, method := range methods {
		stats := snapshot[method]
		var cumulative uint64
		for i, inBucket := range stats.bucketCounts {
			cumulative += inBucket
			b.WriteString(`function_duration_seconds_bucket{method="` + method + `",le="` + durationBucketLabels[i] +
				`"} ` + count(cumulative) + "\n")
		}
		b.WriteString(`function_duration_seconds_sum{method="` + method + `"} ` + pythonFloat(stats.durationSum) + "\n")
		b.WriteString(`function_duration_seconds_count{method="` + method + `"} ` + count(stats.calls) + "\n")
	}
	b.WriteString("# HELP function_stuck_calls Timed-out calls whose goroutine is still running.\n" +
		"# TYPE function_stuck_calls gauge\n" +
		"function_stuck_calls " + strconv.FormatInt(stuckCalls, 10) + "\n")
	return b.String()
}

func count(value uint64) string {
	return strconv.FormatUint(value, 10)
}

// pythonFloat writes a float as Python's repr does for the values a duration sum takes: 0.0, 1.5, 2.5e-05.
func pythonFloat(value float64) string {
	if value != 0 && (math.Abs(value) < 1e-4 || math.Abs(value) >= 1e16) {
		return strconv.FormatFloat(value, 'g', -1, 64)
	}
	text := strconv.FormatFloat(value, 'f', -1, 64)
	if !strings.Contains(text, ".") {
		text += ".0"
	}
	return text
}
