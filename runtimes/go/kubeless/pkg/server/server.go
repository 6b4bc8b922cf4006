// Package server runs one Kubeless Go function over HTTP, with the contract every runtime of this project keeps
// (runtimes/python/kubeless_runtime.py is the reference):
//
//   - FUNC_PORT (8080) serves GET /healthz (200 "OK"; 503 once FUNC_MAX_STUCK timed-out calls are still
//     running), GET /metrics (Prometheus text), OPTIONS as a CORS preflight, and any other request as a call
//     of the function. Every response allows any origin.
//   - A call times out after FUNC_TIMEOUT seconds: 408 "Function timed out after <N> s", counted as a failure.
//     A goroutine cannot be killed, so the function keeps running, "stuck", its late writes fail and its
//     result is dropped; the server goes on serving (the Kubeless Go runtime exited instead).
//   - An error or a panic answers 500 with one line, "Error: <message>" or "Panic: <value>" (a panic's stack
//     goes to stderr). Calls, failures and durations are counted per HTTP method.
//   - One access-log line per request goes to stdout, buffered and flushed every 50 ms; SIGTERM stops
//     accepting and lets running calls finish within the pod's grace period (FUNC_GRACE_PERIOD, 30 s).
//   - Slow clients are bounded: a request's head, and a kept-alive connection's wait for the next one, by
//     FUNC_HEADER_TIMEOUT (10 s); a body by FUNC_READ_TIMEOUT (60 s) after its head. Beyond FUNC_MAX_CONNECTIONS
//     (1024) connections, a reserve answers /healthz and /metrics only (limits.go).
//   - A memory limit (FUNC_MEMORY_LIMIT) becomes the garbage collector's soft limit (90 %), unless GOMEMLIMIT
//     is set.
//
// The compile step generates a main package that calls Main with the user's function.
package server

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/kubeless/kubeless/pkg/functions"
)

const (
	defaultCORSMethods = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
	logFlushInterval   = 50 * time.Millisecond
)

// Server answers the HTTP requests of one function.
type Server struct {
	stuck              int64 // timed-out calls whose function still runs (atomic; first field for 64-bit alignment)
	config             Config
	function           functions.Handler
	context            functions.Context
	timeoutMessage     string
	bodyTimeoutMessage string
	metrics            *metrics
	clock              clock
	log                *accessLog
}

// New makes the server of function, logging requests to accessLog.
func New(config Config, function functions.Handler, accessLog io.Writer) *Server {
	return &Server{config: config, function: function, context: config.FunctionContext(),
		timeoutMessage:     config.TimeoutMessage(),
		bodyTimeoutMessage: "request body not received within " + config.ReadText + " s",
		metrics:            newMetrics(), log: newAccessLog(accessLog)}
}

// Main serves function as the environment says, until SIGTERM or SIGINT, and exits.
func Main(function functions.Handler) {
	os.Exit(run(function))
}

func run(function functions.Handler) int {
	config, err := ConfigFromEnv(os.Getenv)
	if err != nil {
		return failStart("invalid configuration: " + err.Error())
	}
	if limit := config.MemoryLimitBytes(); limit > 0 && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(limit / 10 * 9) // the GC works harder near the container's limit instead of crossing it
	}
	address := net.JoinHostPort(config.Host, strconv.Itoa(config.Port))
	tcpListener, err := net.Listen("tcp", address)
	if err != nil {
		return failStart(fmt.Sprintf("cannot listen on %s: %v", address, err))
	}
	server := New(config, function, os.Stdout)
	listener := newBoundedListener(tcpListener.(*net.TCPListener), config.MaxConnections)
	// No ReadTimeout: net/http would apply it to the whole connection, and its reader would then cancel the
	// context of a call that runs longer. The body gets its own deadline (readBody).
	httpServer := &http.Server{Handler: server, ReadHeaderTimeout: config.HeaderTimeout,
		IdleTimeout: config.HeaderTimeout}
	reserve := server.reserveServer()
	go reserve.Serve(listener.reserve)
	stopped := make(chan struct{})
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-signals
		ctx, cancel := context.WithTimeout(context.Background(), config.Drain())
		defer cancel()
		httpServer.Shutdown(ctx) // returns early when running calls outlast the drain: the process exits anyway
		reserve.Close()
		close(stopped)
	}()
	go server.log.flushEvery(logFlushInterval)
	port := tcpListener.Addr().(*net.TCPAddr).Port
	fmt.Printf("serving %s on %s\n", config.QualifiedName(), net.JoinHostPort(config.Host, strconv.Itoa(port)))
	err = httpServer.Serve(listener)
	if err != http.ErrServerClosed {
		server.log.flush()
		fmt.Fprintf(os.Stderr, "serving stopped: %v\n", err)
		return 1
	}
	<-stopped
	server.log.flush()
	return 0
}

// failStart reports why the server cannot start, also in the pod's termination message when there is one
// (FUNC_TERMINATION_LOG, default /dev/termination-log).
func failStart(message string) int {
	fmt.Fprintln(os.Stderr, message)
	path := os.Getenv("FUNC_TERMINATION_LOG")
	if path == "" {
		path = "/dev/termination-log"
	}
	if log, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0); err == nil {
		fmt.Fprintln(log, message)
		log.Close()
	}
	return 1
}

// ServeHTTP routes a request, answers it and logs it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	started := time.Now()
	w.Header()["Access-Control-Allow-Origin"] = anyOrigin
	status, abort, logged := s.route(w, r, started)
	if !logged {
		now := time.Now()
		s.log.record(s.clock.rfc3339(now), r.Method, r.RequestURI, status, now.Sub(started))
	}
	if abort {
		panic(http.ErrAbortHandler) // net/http closes the connection and logs nothing
	}
}

// route answers a request; it returns the status, whether to cut the connection, and whether the request is
// already in the access log (a timed-out call is logged at its deadline).
func (s *Server) route(w http.ResponseWriter, r *http.Request, started time.Time) (int, bool, bool) {
	switch {
	case r.Method == http.MethodOptions:
		header := w.Header()
		methods := r.Header.Get("Access-Control-Request-Method")
		if methods == "" {
			methods = defaultCORSMethods
		}
		header.Set("Access-Control-Allow-Methods", methods)
		if requested := r.Header.Get("Access-Control-Request-Headers"); requested != "" {
			header.Set("Access-Control-Allow-Headers", requested)
		}
		w.WriteHeader(http.StatusNoContent)
		return http.StatusNoContent, false, false
	case r.Method == http.MethodGet && r.URL.Path == "/healthz":
		return s.health(w), false, false
	case r.Method == http.MethodGet && r.URL.Path == "/metrics":
		writeText(w, http.StatusOK, s.metrics.render(atomic.LoadInt64(&s.stuck)), prometheusType)
		return http.StatusOK, false, false
	}
	data, status, problem := s.readBody(w, r)
	if status != 0 {
		w.Header()["Connection"] = closeConnection
		writeText(w, status, problem, textType)
		return status, false, false
	}
	return s.callFunction(w, r, data, started)
}

// health is GET /healthz: 200, or 503 once FUNC_MAX_STUCK calls are stuck.
func (s *Server) health(w http.ResponseWriter) int {
	if atomic.LoadInt64(&s.stuck) >= s.config.MaxStuck {
		writeText(w, http.StatusServiceUnavailable, "too many stuck calls", textType)
		return http.StatusServiceUnavailable
	}
	writeText(w, http.StatusOK, "OK", textType)
	return http.StatusOK
}

// readBody reads the whole request body, which becomes the event's Data, and puts it back in r.Body for a
// function that reads the request itself. A problem comes back as a status and a message. The body must arrive
// within FUNC_READ_TIMEOUT: a deadline on the connection while it is read, lifted before the function runs (a
// deadline left would cancel the call's context, through net/http's read in the background).
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) (string, int, string) {
	if r.Body == nil || r.Body == http.NoBody {
		return "", 0, ""
	}
	limit := s.config.MaxBodyBytes
	tooLarge := fmt.Sprintf("request body larger than %d bytes", limit)
	if r.ContentLength > limit {
		return "", http.StatusRequestEntityTooLarge, tooLarge
	}
	connection := http.NewResponseController(w)
	connection.SetReadDeadline(time.Now().Add(s.config.ReadTimeout))
	var data []byte
	var err error
	if r.ContentLength > 0 {
		data = make([]byte, r.ContentLength)
		_, err = io.ReadFull(r.Body, data)
	} else { // chunked
		data, err = io.ReadAll(io.LimitReader(r.Body, limit+1))
	}
	// On a problem the deadline stays: net/http reads what is left of the body after the answer (to keep the
	// connection), and a slow client must not hold it there either.
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "", http.StatusRequestTimeout, s.bodyTimeoutMessage
	case err != nil:
		return "", http.StatusBadRequest, "cannot read the request body: " + err.Error()
	case int64(len(data)) > limit:
		return "", http.StatusRequestEntityTooLarge, tooLarge
	}
	connection.SetReadDeadline(time.Time{})
	body := string(data)
	r.Body = io.NopCloser(strings.NewReader(body))
	return body, 0, ""
}

// newEventID is a random (version 4) UUID in 32 hex digits, as the Python runtime makes them.
func newEventID() string {
	var id [16]byte
	binary.LittleEndian.PutUint64(id[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(id[8:], rand.Uint64())
	id[6] = id[6]&0x0f | 0x40
	id[8] = id[8]&0x3f | 0x80
	return hex.EncodeToString(id[:])
}

// clock formats the current second once, however many requests need it.
type clock struct {
	cached atomic.Value // *clockTick
}

type clockTick struct {
	second int64
	text   string
}

func (c *clock) rfc3339(now time.Time) string {
	second := now.Unix()
	if tick, ok := c.cached.Load().(*clockTick); ok && tick.second == second {
		return tick.text
	}
	text := now.UTC().Format("2006-01-02T15:04:05Z")
	c.cached.Store(&clockTick{second, text})
	return text
}

// accessLog buffers one line per request ("<time> <method> <path> <status> <ms>ms") so that logging costs no
// system call per request; flushEvery writes the buffer out.
type accessLog struct {
	mu   sync.Mutex
	out  *bufio.Writer
	line []byte
}

func newAccessLog(out io.Writer) *accessLog {
	return &accessLog{out: bufio.NewWriterSize(out, 64<<10), line: make([]byte, 0, 256)}
}

func (l *accessLog) record(when, method, path string, status int, elapsed time.Duration) {
	if method == "" {
		method = "-"
	}
	if path == "" {
		path = "-"
	}
	l.mu.Lock()
	line := append(l.line[:0], when...)
	line = append(append(append(line, ' '), method...), ' ')
	line = append(append(line, path...), ' ')
	line = append(strconv.AppendInt(line, int64(status), 10), ' ')
	line = append(strconv.AppendFloat(line, float64(elapsed)/float64(time.Millisecond), 'f', 3, 64), "ms\n"...)
	l.out.Write(line)
	l.line = line
	l.mu.Unlock()
}

func (l *accessLog) flush() {
	l.mu.Lock()
	l.out.Flush()
	l.mu.Unlock()
}

func (l *accessLog) flushEvery(interval time.Duration) {
	for range time.Tick(interval) {
		l.flush()
	}
}
