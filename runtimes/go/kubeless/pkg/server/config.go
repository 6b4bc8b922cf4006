package server

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
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
	MaxBodyBytes int64         // FUNC_MEMFILE_MAX (default 100 MiB, or a quarter of FUNC_MEMORY_LIMIT): larger get 413
	MaxStuck     int64         // FUNC_MAX_STUCK (default 4): timed-out calls still running before /healthz fails

	HeaderTimeout  time.Duration // FUNC_HEADER_TIMEOUT seconds (default 10) for a request's head, or an idle wait
	ReadTimeout    time.Duration // FUNC_READ_TIMEOUT seconds (default 60) for a body, once its head is read
	HeaderText     string        // the two as written, for the messages
	ReadText       string
	MaxConnections int           // FUNC_MAX_CONNECTIONS (default 1024); beyond, the reserve answers probes only
	GracePeriod    time.Duration // FUNC_GRACE_PERIOD seconds (default 30), the pod's terminationGracePeriodSeconds
}

const (
	defaultBodyLimit     = 100 << 20
	bodyLimitMemoryShare = 4 // without FUNC_MEMFILE_MAX, a body may take a quarter of FUNC_MEMORY_LIMIT
)

// quantity is a Kubernetes quantity: a decimal number, an optional exponent, an optional suffix.
var quantity = regexp.MustCompile(`^\+?(\d+(?:\.\d*)?|\.\d+)(?:[eE]([+-]?\d+))?(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)?$`)

var quantityFactors = map[string]float64{"": 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15,
	"E": 1e18, "Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40, "Pi": 1 << 50, "Ei": 1 << 60}

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
	bodyLimit := int64(defaultBodyLimit)
	if memory := c.MemoryLimitBytes(); memory > 0 && memory/bodyLimitMemoryShare < bodyLimit {
		bodyLimit = memory / bodyLimitMemoryShare
	}
	maxBody, err := number(getenv, "FUNC_MEMFILE_MAX", strconv.FormatInt(bodyLimit, 10), 0, 1<<53, true)
	if err != nil {
		return c, err
	}
	c.MaxBodyBytes = int64(maxBody)
	maxStuck, err := number(getenv, "FUNC_MAX_STUCK", "4", 1, 1<<31, true)
	if err != nil {
		return c, err
	}
	c.MaxStuck = int64(maxStuck)
	seconds, err = number(getenv, "FUNC_HEADER_TIMEOUT", "10", 0.001, 1e9, false)
	if err != nil {
		return c, err
	}
	c.HeaderTimeout, c.HeaderText = time.Duration(seconds*float64(time.Second)), strconv.FormatFloat(seconds, 'f', -1, 64)
	seconds, err = number(getenv, "FUNC_READ_TIMEOUT", "60", 0.001, 1e9, false)
	if err != nil {
		return c, err
	}
	c.ReadTimeout, c.ReadText = time.Duration(seconds*float64(time.Second)), strconv.FormatFloat(seconds, 'f', -1, 64)
	connections, err := number(getenv, "FUNC_MAX_CONNECTIONS", "1024", 1, 1<<31, true)
	if err != nil {
		return c, err
	}
	c.MaxConnections = int(connections)
	seconds, err = number(getenv, "FUNC_GRACE_PERIOD", "30", 0, 1e9, false)
	if err != nil {
		return c, err
	}
	c.GracePeriod = time.Duration(seconds * float64(time.Second))
	return c, nil
}

// Drain is how long SIGTERM lets running calls finish: the grace period but for a margin (a second, or a tenth
// of a short one), so that the server exits, its log flushed, before the kubelet's SIGKILL.
func (c Config) Drain() time.Duration {
	margin := c.GracePeriod / 10
	if margin > time.Second {
		margin = time.Second
	}
	return c.GracePeriod - margin
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
// "0" or unreadable (the limit is then unknown), as the Python and Node runtimes read it.
func (c Config) MemoryLimitBytes() int64 {
	match := quantity.FindStringSubmatch(c.MemoryLimit)
	if match == nil {
		return 0
	}
	value, err := strconv.ParseFloat(match[1], 64)
	exponent, exponentErr := strconv.Atoi(orDefault(match[2], "0"))
	if err != nil || exponentErr != nil {
		return 0
	}
	value = value * math.Pow(10, float64(exponent)) * quantityFactors[match[3]] // in the order Python and Node do it
	if !(value > 0) || value >= 1<<62 {
		return 0
	}
	return int64(value)
}
