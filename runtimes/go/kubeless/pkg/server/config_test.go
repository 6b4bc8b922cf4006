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
		config.Host != "0.0.0.0" || config.MaxBodyBytes != 100<<20 || config.MaxStuck != 4 {
		t.Errorf("defaults: %+v", config)
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
		{"FUNC_TIMEOUT", "soon"}:   "FUNC_TIMEOUT must be a number, got 'soon'",
		{"FUNC_TIMEOUT", "NaN"}:    "FUNC_TIMEOUT must be a number, got 'NaN'",
		{"FUNC_TIMEOUT", "0"}:      "FUNC_TIMEOUT must be at least 0.001, got '0'",
		{"FUNC_PORT", "80.5"}:      "FUNC_PORT must be a number, got '80.5'",
		{"FUNC_PORT", "70000"}:     "FUNC_PORT must be at most 65535, got '70000'",
		{"FUNC_MAX_STUCK", "0"}:    "FUNC_MAX_STUCK must be at least 1, got '0'",
		{"FUNC_MEMFILE_MAX", "-1"}: "FUNC_MEMFILE_MAX must be at least 0, got '-1'",
	} {
		_, err := ConfigFromEnv(env(map[string]string{variables[0]: variables[1]}))
		if err == nil || err.Error() != want {
			t.Errorf("%s=%s: got %v, want %s", variables[0], variables[1], err, want)
		}
	}
}

func TestMemoryLimitBytes(t *testing.T) {
	for quantity, want := range map[string]int64{
		"": 0, "0": 0, "128Mi": 128 << 20, "1Gi": 1 << 30, "500M": 500e6, "134217728": 134217728, "1.5Gi": 3 << 29,
		"2k": 2000, "lots": 0, "-1Mi": 0,
	} {
		if got := (Config{MemoryLimit: quantity}).MemoryLimitBytes(); got != want {
			t.Errorf("%q: got %d, want %d", quantity, got, want)
		}
	}
}
