package server

import (
	"testing"
	"time"
)

func env(values map[string]string) func(string) string {
	return func(name string) string { return values[name] }
}

func TestConfigDefaults(t *testing.T) {
	config, err := ConfigFromEnv(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if config.Timeout != 180*time.Second || config.TimeoutText != "180" || config.Port != 8080 ||
		config.Host != "0.0.0.0" || config.MaxBodyBytes != 100<<20 || config.MaxStuck != 4 ||
		config.HeaderTimeout != 10*time.Second || config.ReadTimeout != time.Minute || config.MaxConnections != 1024 ||
		config.GracePeriod != 30*time.Second {
		t.Errorf("defaults: %+v", config)
	}
}

func TestBodyLimitFollowsTheMemoryLimit(t *testing.T) {
	for _, c := range []struct {
		memory, memfileMax string
		want               int64
	}{
		{"128Mi", "", 32 << 20}, {"1Gi", "", 100 << 20}, {"0", "", 100 << 20}, {"", "", 100 << 20},
		{"lots", "", 100 << 20}, {"16Mi", "8388608", 8 << 20}, {"16Mi", "0", 0},
	} {
		config, err := ConfigFromEnv(env(map[string]string{"FUNC_MEMORY_LIMIT": c.memory, "FUNC_MEMFILE_MAX": c.memfileMax}))
		if err != nil || config.MaxBodyBytes != c.want {
			t.Errorf("FUNC_MEMORY_LIMIT=%q FUNC_MEMFILE_MAX=%q: got %d (%v), want %d", c.memory, c.memfileMax,
				config.MaxBodyBytes, err, c.want)
		}
	}
}

func TestDrainEndsBeforeTheGracePeriod(t *testing.T) {
	for grace, want := range map[time.Duration]time.Duration{
		30 * time.Second: 29 * time.Second, 10 * time.Second: 9 * time.Second, time.Second: 900 * time.Millisecond,
		0: 0,
	} {
		if got := (Config{GracePeriod: grace}).Drain(); got != want {
			t.Errorf("%v: got %v, want %v", grace, got, want)
		}
	}
}

func TestConfigTimeoutAsWritten(t *testing.T) {
	config, err := ConfigFromEnv(env(map[string]string{"FUNC_TIMEOUT": "0.25"}))
	if err != nil {
		t.Fatal(err)
	}
	if config.Timeout != 250*time.Millisecond || config.TimeoutMessage() != "Function timed out after 0.25 s" {
		t.Errorf("got %v, %q", config.Timeout, config.TimeoutMessage())
	}
}

func TestConfigErrors(t *testing.T) {
	for variables, want := range map[[2]string]string{
		{"FUNC_TIMEOUT", "soon"}:        "FUNC_TIMEOUT must be a number, got 'soon'",
		{"FUNC_TIMEOUT", "NaN"}:         "FUNC_TIMEOUT must be a number, got 'NaN'",
		{"FUNC_TIMEOUT", "0"}:           "FUNC_TIMEOUT must be at least 0.001, got '0'",
		{"FUNC_PORT", "80.5"}:           "FUNC_PORT must be a number, got '80.5'",
		{"FUNC_PORT", "70000"}:          "FUNC_PORT must be at most 65535, got '70000'",
		{"FUNC_MAX_STUCK", "0"}:         "FUNC_MAX_STUCK must be at least 1, got '0'",
		{"FUNC_MEMFILE_MAX", "-1"}:      "FUNC_MEMFILE_MAX must be at least 0, got '-1'",
		{"FUNC_HEADER_TIMEOUT", "0"}:    "FUNC_HEADER_TIMEOUT must be at least 0.001, got '0'",
		{"FUNC_READ_TIMEOUT", "x"}:      "FUNC_READ_TIMEOUT must be a number, got 'x'",
		{"FUNC_MAX_CONNECTIONS", "0"}:   "FUNC_MAX_CONNECTIONS must be at least 1, got '0'",
		{"FUNC_MAX_CONNECTIONS", "1.5"}: "FUNC_MAX_CONNECTIONS must be a number, got '1.5'",
		{"FUNC_GRACE_PERIOD", "-1"}:     "FUNC_GRACE_PERIOD must be at least 0, got '-1'",
	} {
		_, err := ConfigFromEnv(env(map[string]string{variables[0]: variables[1]}))
		if err == nil || err.Error() != want {
			t.Errorf("%s=%s: got %v, want %s", variables[0], variables[1], err, want)
		}
	}
}

// The table of tests/unit/runtime_harness.py's MEMORY_QUANTITIES, which the Python and Node runtimes are tested on.
func TestMemoryLimitBytes(t *testing.T) {
	for quantity, want := range map[string]int64{
		"": 0, "0": 0, "128Mi": 128 << 20, "1Gi": 1 << 30, "500M": 500e6, "134217728": 134217728, "1.5Gi": 3 << 29,
		"2k": 2000, "lots": 0, "-1Mi": 0, "1e3": 1000, "1E3": 1000, "1E": 1e18, "128974848000m": 128974848,
		"+5Ki": 5120, ".5Ki": 512, "1e999": 0, "1 Mi": 0, "0x10": 0, "Mi": 0, "\u0661\u0662Mi": 0,
	} {
		if got := (Config{MemoryLimit: quantity}).MemoryLimitBytes(); got != want {
			t.Errorf("%q: got %d, want %d", quantity, got, want)
		}
	}
}
