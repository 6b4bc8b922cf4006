package server

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"
)

// Shared header values; net/http only reads them.
var (
	anyOrigin       = []string{"*"}
	textType        = []string{"text/plain; charset=utf-8"}
	prometheusType  = []string{"text/plain; version=0.0.4; charset=utf-8"}
	closeConnection = []string{"close"}
)

// errCallEnded is what a function's late write to Extensions.Response gets once its call was answered.
var errCallEnded = errors.New("kubeless: the call has ended, its response is already sent")

// writeText sends a whole text response from the runtime itself.
func writeText(w http.ResponseWriter, status int, text string, contentType []string) {
	header := w.Header()
	header["Content-Type"] = contentType
	header["Content-Length"] = []string{strconv.Itoa(len(text))}
	w.WriteHeader(status)
	io.WriteString(w, text)
}

// responseGuard is the http.ResponseWriter a function gets as Extensions.Response. A function may outlive its
// call (a timeout cannot stop it, and it may leave goroutines behind), so every write goes through a lock, and
// once the runtime answers the call (closed) the function's writes fail instead of racing with the server.
// The function's headers live in a map of their own until its first write sends them.
type responseGuard struct {
	mu        sync.Mutex
	w         http.ResponseWriter
	header    http.Header // created on the function's first Header() call
	status    int         // the status sent, 0 until one is
	wroteBody bool
	closed    bool
	timedOut  bool
	abort     bool // the call timed out after its response began
}

func (g *responseGuard) Header() http.Header {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.header == nil {
		g.header = make(http.Header)
	}
	return g.header
}

func (g *responseGuard) WriteHeader(status int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed || g.status != 0 {
		return
	}
	g.sendHeader(status)
}

func (g *responseGuard) Write(data []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.endedError(); err != nil {
		return 0, err
	}
	if g.status == 0 {
		g.sendHeader(http.StatusOK)
	}
	g.wroteBody = true
	return g.w.Write(data)
}

// Flush lets a function stream (http.Flusher).
func (g *responseGuard) Flush() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return
	}
	if g.status == 0 {
		g.sendHeader(http.StatusOK)
	}
	if flusher, ok := g.w.(http.Flusher); ok {
		flusher.Flush()
	}
}

func (g *responseGuard) endedError() error {
	switch {
	case g.timedOut:
		return http.ErrHandlerTimeout
	case g.closed:
		return errCallEnded
	}
	return nil
}

// sendHeader copies the function's headers over the runtime's and sends the status; 1xx statuses are interim.
func (g *responseGuard) sendHeader(status int) {
	target := g.w.Header()
	for name, values := range g.header {
		target[name] = values
	}
	g.w.WriteHeader(status)
	if status >= 200 {
		g.status = status
	}
}

// finish answers a call whose function returned: with body unless the function already wrote one itself.
// A failed call (fromFunction false) gets a plain text body and none of the function's headers.
func (g *responseGuard) finish(status int, body string, fromFunction bool) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	if g.wroteBody {
		return g.status
	}
	if g.status == 0 {
		header := g.w.Header()
		if fromFunction {
			for name, values := range g.header {
				header[name] = values
			}
		}
		if _, set := header["Content-Type"]; !set || !fromFunction {
			header["Content-Type"] = textType
		}
		header["Content-Length"] = []string{strconv.Itoa(len(body))}
		g.w.WriteHeader(status)
		g.status = status
	}
	io.WriteString(g.w, body)
	return g.status
}

// close ends the call without a word from the runtime.
func (g *responseGuard) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}

// timeout answers 408, at once, for a call whose function still runs; the caller holds g.mu. If the function had
// already sent its status, the response cannot change any more: the connection is cut, so that the client sees a
// broken response rather than a truncated one that looks whole (at once if the connection can be taken over,
// otherwise when the function returns: abort).
func (g *responseGuard) timeout(message string) int {
	g.closed, g.timedOut = true, true
	if g.status != 0 {
		if hijacker, ok := g.w.(http.Hijacker); ok {
			if connection, _, err := hijacker.Hijack(); err == nil {
				connection.Close()
				return http.StatusRequestTimeout
			}
		}
		g.abort = true
		return http.StatusRequestTimeout
	}
	g.w.Header()["Connection"] = closeConnection
	writeText(g.w, http.StatusRequestTimeout, message, textType)
	g.status = http.StatusRequestTimeout
	if flusher, ok := g.w.(http.Flusher); ok {
		flusher.Flush() // the request's goroutine is still in the function: send it now
	}
	return http.StatusRequestTimeout
}
