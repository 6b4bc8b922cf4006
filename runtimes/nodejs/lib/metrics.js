'use strict';
/**
 * GET /metrics: calls, failures and durations per HTTP method, in the names and bucket labels every runtime of
 * this project uses (runtimes/README.md), so that one dashboard reads them all.
 */

const PROMETHEUS_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
// As the Python runtime writes them (repr of a float), so that every runtime's series have the same labels.
const BUCKET_LABELS = ['0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5', '1.0', '2.5', '5.0', '10.0', '+Inf'];

class MethodStats {
  constructor() {
    this.calls = 0;
    this.failures = 0;
    this.durationSum = 0;
    this.bucketCounts = new Array(DURATION_BUCKETS.length + 1).fill(0);
  }
}

class Metrics {
  constructor() {
    this.byMethod = new Map();
  }

  observe(method, seconds, failed) {
    let stats = this.byMethod.get(method);
    if (stats === undefined) {
      stats = new MethodStats();
      this.byMethod.set(method, stats);
    }
    stats.calls += 1;
    if (failed) stats.failures += 1;
    stats.durationSum += seconds;
    let bucket = 0;
    while (bucket < DURATION_BUCKETS.length && seconds > DURATION_BUCKETS[bucket]) bucket++;
    stats.bucketCounts[bucket] += 1;
  }

  /** The Prometheus text exposition (version 0.0.4, PROMETHEUS_TYPE). */
  render(stuckCalls) {
    const methods = [...this.byMethod.keys()].sort();
    const label = (method) => JSON.stringify(method); // a quoted, escaped label value
    const lines = ['# HELP function_calls_total Number of calls to the function.',
      '# TYPE function_calls_total counter'];
    for (const m of methods) lines.push(`function_calls_total{method=${label(m)}} ${this.byMethod.get(m).calls}`);
    lines.push('# HELP function_failures_total Number of calls that raised or timed out.',
      '# TYPE function_failures_total counter');
    for (const m of methods) lines.push(`function_failures_total{method=${label(m)}} ${this.byMethod.get(m).failures}`);
    lines.push('# HELP function_duration_seconds Duration of function calls.',
      '# TYPE function_duration_seconds histogram');
    for (const m of methods) {
      const stats = this.byMethod.get(m);
      let cumulative = 0;
      stats.bucketCounts.forEach((count, i) => {
        cumulative += count;
        lines.push(`function_duration_seconds_bucket{method=${label(m)},le="${BUCKET_LABELS[i]}"} ${cumulative}`);
      });
      lines.push(`function_duration_seconds_sum{method=${label(m)}} ${stats.durationSum}`);
      lines.push(`function_duration_seconds_count{method=${label(m)}} ${stats.calls}`);
    }
    lines.push('# HELP function_stuck_calls Timed-out calls whose promise has not settled yet.',
      '# TYPE function_stuck_calls gauge', `function_stuck_calls ${stuckCalls}`);
    return lines.join('\n') + '\n';
  }
}

module.exports = { Metrics, PROMETHEUS_TYPE };
