package server

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kubeless/kubeless/pkg/functions"
)

// A call's state, guarded by its response's lock: whichever of the function returning and the deadline passing
// comes first moves it out of running and answers. The function returning first is the common case; the
// deadline first makes the call "stuck" until the function does return, which /healthz and /metrics count.
const (
	callRunning = iota
	callReturned
	callAbandoned
)

// call is one run of the function. The function runs on the request's own goroutine (a goroutine per call
// would cost a scheduler round trip per request); a timer answers 408 at the deadline from its own goroutine,
// through the same responseGuard lock as the function's writes.
type call struct {
	server   *Server
	request  *http.Request
	started  time.Time
	response responseGuard
	context  callContext
	timer    *time.Timer
	state    int // guarded by response.mu
}

// callFunction runs the function for one request and answers it. It returns the status sent, whether the
// connection must be cut (see responseGuard.timeout), and whether the request is already in the access log.
func (s *Server) callFunction(w http.ResponseWriter, r *http.Request, data string, started time.Time) (int, bool,
	bool) {
	c := &call{server: s, request: r, started: started}
	c.response.w = w
	c.context.parent = r.Context()
	c.context.deadline = started.Add(s.config.Timeout)
	event := functions.Event{
		Data:           data,
		EventID:        header(r, "Event-Id"),
		EventType:      header(r, "Event-Type"),
		EventTime:      header(r, "Event-Time"),
		EventNamespace: header(r, "Event-Namespace"),
		Extensions:     functions.Extension{Request: r, Response: &c.response, Context: &c.context},
	}
	if event.EventID == "" {
		event.EventID = newEventID()
	}
	if event.EventType == "" {
		event.EventType = mediaType(header(r, "Content-Type"))
	}
	if event.EventTime == "" {
		event.EventTime = s.clock.rfc3339(started)
	}

	c.timer = time.AfterFunc(s.config.Timeout, c.expire)
	result := s.invoke(event)
	c.timer.Stop()
	c.response.mu.Lock()
	abandoned, abort := c.state == callAbandoned, c.response.abort
	c.state = callReturned
	c.response.mu.Unlock()
	if abandoned {
		atomic.AddInt64(&s.stuck, -1)
		if result.panicked {
			s.logPanic(result)
		}
		fmt.Fprintf(os.Stderr, "discarded the late result of %s %s\n", r.Method, r.RequestURI)
		return http.StatusRequestTimeout, abort, true
	}
	c.context.cancel(context.Canceled) // as a context.WithTimeout's cancel would, once the call is over
	status, abort := s.answer(&c.response, r, result, started)
	return status, abort, false
}

// outcome is what a call of the function gave: a result, an error or a recovered panic.
type outcome struct {
	body     string
	err      error
	panicked bool
	panicVal interface{}
	stack    []byte
}

func (s *Server) invoke(event functions.Event) (result outcome) {
	defer func() {
		if value := recover(); value != nil {
			result = outcome{panicked: true, panicVal: value, stack: debug.Stack()}
		}
	}()
	result.body, result.err = s.function(event, s.context)
	return result
}

// expire runs on the timer's goroutine at the deadline, while the function still runs (or is just returning).
func (c *call) expire() {
	c.context.cancel(context.DeadlineExceeded)
	s := c.server
	c.response.mu.Lock()
	if c.state != callRunning {
		c.response.mu.Unlock()
		return
	}
	c.state = callAbandoned
	atomic.AddInt64(&s.stuck, 1)
	// Counted first, so that a client reading /metrics after its 408 sees it.
	s.metrics.observe(c.request.Method, time.Since(c.started), true)
	status := c.response.timeout(s.timeoutMessage)
	c.response.mu.Unlock()
	s.log.record(s.clock.rfc3339(time.Now()), c.request.Method, c.request.RequestURI, status,
		time.Since(c.started))
}

// answer sends what the function returned: its string (200), or 500 with a one-line message on an error or a
// panic, as "Error: <message>" or "Panic: <value>" (the Python runtime writes "<ExceptionType>: <message>").
func (s *Server) answer(guard *responseGuard, r *http.Request, result outcome, started time.Time) (int, bool) {
	failed := result.err != nil || result.panicked
	s.metrics.observe(r.Method, time.Since(started), failed)
	switch {
	case result.panicked && result.panicVal == http.ErrAbortHandler: // the function asks to cut the connection
		guard.close()
		return http.StatusInternalServerError, true
	case result.panicked:
		s.logPanic(result)
		return guard.finish(http.StatusInternalServerError, "Panic: "+oneLine(fmt.Sprint(result.panicVal)), false), false
	case result.err != nil:
		fmt.Fprintf(os.Stderr, "%s failed on %s %s: %v\n", s.config.QualifiedName(), r.Method, r.RequestURI,
			result.err)
		return guard.finish(http.StatusInternalServerError, "Error: "+oneLine(result.err.Error()), false), false
	}
	return guard.finish(http.StatusOK, result.body, true), false
}

func (s *Server) logPanic(result outcome) {
	fmt.Fprintf(os.Stderr, "panic in %s: %v\n\n%s\n", s.config.QualifiedName(), result.panicVal, result.stack)
}

// header is r.Header.Get for a name already in canonical form, as net/http stores received headers: without
// the canonicalization Get does on every call.
func header(r *http.Request, canonicalName string) string {
	if values := r.Header[canonicalName]; len(values) > 0 {
		return values[0]
	}
	return ""
}

func oneLine(text string) string {
	return strings.Replace(strings.Replace(text, "\r", "", -1), "\n", " ", -1)
}

// mediaType is the media type of a Content-Type value, lower-cased and without parameters.
func mediaType(contentType string) string {
	if contentType == "" {
		return ""
	}
	if semicolon := strings.IndexByte(contentType, ';'); semicolon >= 0 {
		contentType = contentType[:semicolon]
	}
	return strings.ToLower(strings.TrimSpace(contentType))
}

// callContext is Extensions.Context: the request's context with the call's deadline. It costs nothing until a
// function asks for Done: most never do, and a context.WithTimeout per call is a measurable share of a call.
type callContext struct {
	parent   context.Context
	deadline time.Time
	mu       sync.Mutex
	done     chan struct{} // made by the first Done
	err      error
	closed   bool
	stop     func() bool // ends the watch on parent
}

func (c *callContext) Deadline() (time.Time, bool) {
	return c.deadline, true
}

func (c *callContext) Value(key interface{}) interface{} {
	return c.parent.Value(key)
}

func (c *callContext) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		c.done = make(chan struct{})
		c.settle()
		if c.err == nil {
			c.stop = context.AfterFunc(c.parent, func() { c.cancel(c.parent.Err()) })
		}
	}
	return c.done
}

func (c *callContext) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.settle()
	return c.err
}

func (c *callContext) String() string {
	return "kubeless call context with deadline " + c.deadline.String()
}

// settle records an end that happened without a word (the parent's, or the deadline's seen by the clock).
func (c *callContext) settle() {
	if c.err == nil {
		if err := c.parent.Err(); err != nil {
			c.err = err
		} else if !time.Now().Before(c.deadline) {
			c.err = context.DeadlineExceeded
		}
	}
	if c.err != nil && c.done != nil && !c.closed {
		close(c.done)
		c.closed = true
	}
}

func (c *callContext) cancel(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.settle()
	stop := c.stop
	c.stop = nil
	c.mu.Unlock()
	if stop != nil {
		stop()
	}
}
