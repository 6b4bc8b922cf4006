package server

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/kubeless/kubeless/pkg/functions"
)

// Config is the runtime's environment, read once at start-up. Empty variables count as unset.
type Config struct {
	HandlerName  string        // FUNC_HANDLER, e.g. Hello
	ModuleName   string        // MOD_NAME, e.g. hello
	Timeout      time.Duration // FUNC_TIMEOUT seconds (default 180)
	TimeoutText  string        // the timeout as a person wrote it: "180", "0.3"
	Runtime      string        // FUNC_RUNTIME
	MemoryLimit  string        // FUNC_MEMORY_LIMIT
	Host         string        // FUNC_HOST (default 0.0.0.0)
	Port         int           // FUNC_PORT (default 8080)
	MaxBodyBytes int64         // FUNC_MEMFILE_MAX (default 100 MiB): larger bodies get 413
	MaxStuck     int64         // FUNC_MAX_STUCK (default 4): timed-out calls still running before /healthz fails
}

// ConfigFromEnv reads the Kubeless variables through getenv (os.Getenv in production).
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		HandlerName: getenv("FUNC_HANDLER"),
		ModuleName:  getenv("MOD_NAME"),
		Runtime:     getenv("FUNC_RUNTIME"),
		MemoryLimit: getenv("FUNC_MEMORY_LIMIT"),
		Host:        orDefault(getenv("FUNC_HOST"), "0.0.0.0"),
	}
	seconds, err := number(getenv, "FUNC_TIMEOUT", "180", 0.001, 1e9, false)
	if err != nil {
		return c, err
	}
	c.Timeout = time.Duration(seconds * float64(time.Second))
	c.TimeoutText = strconv.FormatFloat(seconds, 'f', -1, 64)
	port, err := number(getenv, "FUNC_PORT", "8080", 0, 65535, true)
	if err != nil {
		return c, err
	}
	c.Port = int(port)
	maxBody, err := number(getenv, "FUNC_MEMFILE_MAX", strconv.Itoa(100<<20), 0, 1<<53, true)
	if err != nil {
		return c, err
	}
	c.MaxBodyBytes = int64(maxBody)
	maxStuck, err := number(getenv, "FUNC_MAX_STUCK", "4", 1, 1<<31, true)
	if err != nil {
		return c, err
	}
	c.MaxStuck = int64(maxStuck)
	return c, nil
}

// QualifiedName is module.function, e.g. hello.Hello.
func (c Config) QualifiedName() string {
	return c.ModuleName + "." + c.HandlerName
}

// FunctionContext is the context every call of the function gets.
func (c Config) FunctionContext() functions.Context {
	return functions.Context{FunctionName: c.HandlerName, Timeout: c.TimeoutText, Runtime: c.Runtime,
		MemoryLimit: c.MemoryLimit}
}

// TimeoutMessage is the body of a 408, worded as every Kubeless runtime of this project words it.
func (c Config) TimeoutMessage() string {
	return "Function timed out after " + c.TimeoutText + " s"
}

func orDefault(value, fallback string) string {
	if value == "" {
		return fallback
	}
	return value
}

// number parses a variable as a finite number in [minimum, maximum], a whole one if asked.
func number(getenv func(string) string, name, fallback string, minimum, maximum float64, whole bool) (float64, error) {
	raw := orDefault(getenv(name), fallback)
	value, err := strconv.ParseFloat(raw, 64)
	if err != nil || math.IsNaN(value) || math.IsInf(value, 0) || (whole && value != math.Trunc(value)) {
		return 0, fmt.Errorf("%s must be a number, got '%s'", name, raw)
	}
	if value < minimum {
		return 0, fmt.Errorf("%s must be at least %s, got '%s'", name, strconv.FormatFloat(minimum, 'f', -1, 64), raw)
	}
	if value > maximum {
		return 0, fmt.Errorf("%s must be at most %s, got '%s'", name, strconv.FormatFloat(maximum, 'f', -1, 64), raw)
	}
	return value, nil
}

// MemoryLimitBytes reads FUNC_MEMORY_LIMIT, a Kubernetes quantity (134217728, 128Mi, 1G); 0 when it is unset,
// "0" or unreadable.
func (c Config) MemoryLimitBytes() int64 {
	number, factor := c.MemoryLimit, 1.0
	for _, unit := range []struct {
		suffix string
		factor float64
	}{{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40}, {"k", 1e3}, {"M", 1e6}, {"G", 1e9},
		{"T", 1e12}} {
		if strings.HasSuffix(number, unit.suffix) {
			number, factor = strings.TrimSuffix(number, unit.suffix), unit.factor
			break
		}
	}
	value, err := strconv.ParseFloat(number, 64)
	if err != nil || !(value > 0) || value*factor > math.MaxInt64/2 {
		return 0
	}
	return int64(value * factor)
}
