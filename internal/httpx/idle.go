// Package httpx holds HTTP client helpers shared by the HTTP backends.
package httpx

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// WithTimeouts bounds every request through rt by d: connecting and
// waiting for the answer's headers (set on a copy of rt when it is an
// *http.Transport; nil means http.DefaultTransport), and waiting for the
// next bytes of the body (IdleTimeout).
func WithTimeouts(rt http.RoundTripper, d time.Duration) http.RoundTripper {
	if rt == nil {
		rt = http.DefaultTransport
	}
	if t, ok := rt.(*http.Transport); ok {
		t = t.Clone()
		t.DialContext = (&net.Dialer{Timeout: d, KeepAlive: 30 * time.Second}).DialContext
		t.ResponseHeaderTimeout = d
		rt = t
	}
	return IdleTimeout(rt, d)
}

// IdleTimeout wraps rt so that an answer whose body stops arriving for
// idle is cut off: the read fails (and the caller retries or reports it)
// instead of waiting forever on a server that stalled mid-body. The
// transport's own timeouts cover connecting and waiting for the headers.
func IdleTimeout(rt http.RoundTripper, idle time.Duration) http.RoundTripper {
	return &idleTransport{rt: rt, idle: idle}
}

type idleTransport struct {
	rt   http.RoundTripper
	idle time.Duration
}

func (t *idleTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancel(req.Context())
	resp, err := t.rt.RoundTrip(req.WithContext(ctx))
	if err != nil {
		cancel()
		return nil, err
	}
	resp.Body = &idleBody{rc: resp.Body, cancel: cancel, timer: time.AfterFunc(t.idle, cancel), idle: t.idle}
	return resp, nil
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach rt.
func (t *idleTransport) CloseIdleConnections() {
	if c, ok := t.rt.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// idleBody cancels its request when no bytes came for idle.
type idleBody struct {
	rc     io.ReadCloser
	cancel context.CancelFunc
	idle   time.Duration

	mu    sync.Mutex // guards timer
	timer *time.Timer
}

func (b *idleBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if n > 0 {
		b.mu.Lock()
		b.timer.Reset(b.idle)
		b.mu.Unlock()
	}
	return n, err
}

func (b *idleBody) Close() error {
	b.mu.Lock()
	b.timer.Stop()
	b.mu.Unlock()
	err := b.rc.Close()
	b.cancel()
	return err
}
