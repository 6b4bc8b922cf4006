// Package functions is what a Kubeless Go function sees of its call: the event and the context.
//
// A function lives in package kubeless and has this signature:
//
//	func Hello(event functions.Event, context functions.Context) (string, error)
//
// The returned string is the response body (200, text/plain unless the function set a Content-Type); an error
// answers 500 "Error: <message>". A function that writes to Extensions.Response itself owns the response: the
// runtime then writes nothing more, except the returned string when only a status was set.
package functions

import (
	"context"
	"net/http"
)

// Event is one call of the function. The Event* fields come from the request headers of the same name
// (event-id, event-type, event-time, event-namespace); the runtime fills in an ID, the body's media type and the
// current time (RFC 3339) when a caller leaves them out.
type Event struct {
	Data           string // the request body, as is
	EventID        string
	EventType      string
	EventTime      string
	EventNamespace string
	Extensions     Extension
}

// Extension gives a function the HTTP exchange behind its event.
type Extension struct {
	// Request is the HTTP request; its Body can be read again (it holds Data).
	Request *http.Request
	// Response lets a function set headers, a status or stream a body itself. Writes after the call has
	// ended (returned or timed out) fail and are dropped.
	Response http.ResponseWriter
	// Context ends when the call times out (FUNC_TIMEOUT) or the caller goes away.
	Context context.Context
}

// Context describes the function being run, from the runtime's environment.
type Context struct {
	FunctionName string // the handler's name (FUNC_HANDLER), e.g. Hello
	Timeout      string // seconds (FUNC_TIMEOUT), e.g. "180"
	Runtime      string // e.g. go1.26 (FUNC_RUNTIME)
	MemoryLimit  string // the container's memory limit (FUNC_MEMORY_LIMIT), e.g. 128Mi
}

// Handler is the signature every Kubeless Go function has.
type Handler func(event Event, context Context) (string, error)
