package server

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// The connection bound. Up to FUNC_MAX_CONNECTIONS connections are served; beyond, reserveConnections more go to
// a second server, the reserve, which answers GET /healthz and GET /metrics and nothing else (503 "too many
// connections"), one request per connection, within reserveTimeout: a pod busy with calls is not one the kubelet
// should restart, so its probes must still get through. A connection beyond both is closed at once. A bound that
// made new connections wait (as x/net's LimitListener does) would fail the probes of a busy pod.
const (
	reserveConnections = 32
	reserveTimeout     = time.Second // or FUNC_HEADER_TIMEOUT when shorter
)

// boundedListener hands out at most max connections at a time to the main server and passes the next
// reserveConnections to the reserve's listener.
type boundedListener struct {
	*net.TCPListener
	max     int
	reserve *reserveListener

	mu       sync.Mutex
	served   int
	reserved int
}

func newBoundedListener(listener *net.TCPListener, max int) *boundedListener {
	return &boundedListener{TCPListener: listener, max: max, reserve: &reserveListener{
		conns: make(chan net.Conn, reserveConnections), closed: make(chan struct{}), addr: listener.Addr()}}
}

func (l *boundedListener) Accept() (net.Conn, error) {
	for {
		conn, err := l.AcceptTCP()
		if err != nil {
			return nil, err
		}
		l.mu.Lock()
		switch {
		case l.served < l.max:
			l.served++
			l.mu.Unlock()
			return &countedConn{TCPConn: conn, release: l.releaseServed}, nil
		case l.reserved < reserveConnections:
			l.reserved++
			l.mu.Unlock()
			l.reserve.conns <- &countedConn{TCPConn: conn, release: l.releaseReserved} // room for every one
		default:
			l.mu.Unlock()
			conn.Close()
		}
	}
}

// Close stops both servers' accepting.
func (l *boundedListener) Close() error {
	l.reserve.Close()
	return l.TCPListener.Close()
}

func (l *boundedListener) releaseServed() {
	l.mu.Lock()
	l.served--
	l.mu.Unlock()
}

func (l *boundedListener) releaseReserved() {
	l.mu.Lock()
	l.reserved--
	l.mu.Unlock()
}

// countedConn gives its place back when it is closed. It embeds the *net.TCPConn, so that net/http still finds
// CloseWrite (a graceful close after an error response) and ReadFrom (sendfile).
type countedConn struct {
	*net.TCPConn
	once    sync.Once
	release func()
}

func (c *countedConn) Close() error {
	c.once.Do(c.release)
	return c.TCPConn.Close()
}

// reserveListener is the reserve server's listener: the connections the bounded listener passes on.
type reserveListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
	addr   net.Addr
}

func (l *reserveListener) Accept() (net.Conn, error) {
	select {
	case conn := <-l.conns:
		return conn, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *reserveListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *reserveListener) Addr() net.Addr {
	return l.addr
}

// reserveServer serves the reserve's connections, each for one request read and answered within reserveTimeout.
func (s *Server) reserveServer() *http.Server {
	timeout := reserveTimeout
	if s.config.HeaderTimeout < timeout {
		timeout = s.config.HeaderTimeout
	}
	return &http.Server{Handler: http.HandlerFunc(s.serveReserve), ReadHeaderTimeout: timeout,
		ReadTimeout: timeout, WriteTimeout: timeout}
}

func (s *Server) serveReserve(w http.ResponseWriter, r *http.Request) {
	w.Header()["Connection"] = closeConnection
	if r.Method == http.MethodGet && (r.URL.Path == "/healthz" || r.URL.Path == "/metrics") {
		s.ServeHTTP(w, r)
		return
	}
	started := time.Now()
	w.Header()["Access-Control-Allow-Origin"] = anyOrigin
	writeText(w, http.StatusServiceUnavailable, "too many connections", textType)
	s.log.record(s.clock.rfc3339(started), r.Method, r.RequestURI, http.StatusServiceUnavailable, time.Since(started))
}
