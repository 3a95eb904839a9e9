// Package faultproxy is an HTTP proxy for tests that stands between dmsfs
// and a protocol test server and, at a configured rate, answers with server
// errors, resets connections before or after the request reached the
// server, cuts bodies, announces a Content-Length shorter than the body it
// sends, stalls, or adds latency.
package faultproxy

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// Kind is a fault.
type Kind string

const (
	Status500 Kind = "500"
	Status502 Kind = "502"
	Status503 Kind = "503" // with Retry-After: 1
	// ResetBefore closes the connection before the request reaches the
	// server.
	ResetBefore Kind = "reset-before"
	// ResetAfter lets the server answer, then closes the connection
	// without passing the answer on: the change happened, the client does
	// not know.
	ResetAfter Kind = "reset-after"
	// CutBody passes the status and headers and half the body on, then
	// closes the connection.
	CutBody Kind = "cut-body"
	// ShortLength announces half the body's length and sends the body: the
	// client reads a short body that looks complete.
	ShortLength Kind = "short-length"
	// Stall waits Stall before passing the request on.
	Stall Kind = "stall"
)

// Kinds lists every fault.
var Kinds = []Kind{Status500, Status502, Status503, ResetBefore, ResetAfter, CutBody, ShortLength, Stall}

// Proxy is a running proxy.
type Proxy struct {
	URL    string
	target *url.URL
	rt     http.RoundTripper
	srv    *httptest.Server

	mu       sync.Mutex // guards the fields below
	rate     float64
	kinds    []Kind
	stall    time.Duration
	latency  time.Duration
	rnd      *rand.Rand
	counts   map[Kind]int
	requests int
}

// Start proxies to target (http://host:port) until the test ends.
func Start(t testing.TB, target string) *Proxy {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{target: u, rt: &http.Transport{MaxIdleConnsPerHost: 32}, stall: 3 * time.Second,
		rnd: rand.New(rand.NewPCG(1, 2)), counts: map[Kind]int{}}
	p.srv = httptest.NewServer(p)
	p.URL = p.srv.URL
	t.Cleanup(p.srv.Close)
	return p
}

// Set injects the kinds (picked at random) into a share rate (0..1) of
// the requests; rate 0 stops the faults.
func (p *Proxy) Set(rate float64, kinds ...Kind) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rate, p.kinds = rate, kinds
}

// SetStall sets how long a Stall fault waits; SetLatency adds a delay to
// every request.
func (p *Proxy) SetStall(d time.Duration) { p.mu.Lock(); p.stall = d; p.mu.Unlock() }

func (p *Proxy) SetLatency(d time.Duration) { p.mu.Lock(); p.latency = d; p.mu.Unlock() }

// Counts returns how many faults of each kind were injected, and the
// number of requests.
func (p *Proxy) Counts() (map[Kind]int, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[Kind]int{}
	for k, v := range p.counts {
		out[k] = v
	}
	return out, p.requests
}

// Summary is the counts as text.
func (p *Proxy) Summary() string {
	c, n := p.Counts()
	var parts []string
	for k, v := range c {
		parts = append(parts, fmt.Sprintf("%s %d", k, v))
	}
	sort.Strings(parts)
	return fmt.Sprintf("%d requests, faults: %s", n, strings.Join(parts, ", "))
}

func (p *Proxy) pick() (Kind, time.Duration, time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests++
	if len(p.kinds) == 0 || p.rnd.Float64() >= p.rate {
		return "", p.latency, p.stall
	}
	k := p.kinds[p.rnd.IntN(len(p.kinds))]
	p.counts[k]++
	return k, p.latency, p.stall
}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	kind, latency, stall := p.pick()
	time.Sleep(latency)
	body, _ := io.ReadAll(r.Body)
	switch kind {
	case Status500, Status502, Status503:
		if kind == Status503 {
			w.Header().Set("Retry-After", "1")
		}
		code := map[Kind]int{Status500: 500, Status502: 502, Status503: 503}[kind]
		http.Error(w, "fault injected by faultproxy", code)
		return
	case ResetBefore:
		hijackClose(w)
		return
	case Stall:
		// Until the stall ends or the client gives up.
		select {
		case <-time.After(stall):
		case <-r.Context().Done():
			return
		}
	}
	out := r.Clone(r.Context())
	out.URL.Scheme, out.URL.Host = p.target.Scheme, p.target.Host
	// The Host header stays the proxy's, so that servers that build links
	// from it (Invenio) send the client back through the proxy.
	out.Host = r.Host
	out.RequestURI = ""
	out.Body = io.NopCloser(bytes.NewReader(body))
	out.ContentLength = int64(len(body))
	resp, err := p.rt.RoundTrip(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(resp.Body)
	if err != nil {
		hijackClose(w)
		return
	}
	switch kind {
	case ResetAfter:
		hijackClose(w)
		return
	case CutBody:
		raw(w, resp, rb[:len(rb)/2], len(rb))
		return
	case ShortLength:
		if len(rb) >= 2 {
			raw(w, resp, rb, len(rb)/2)
			return
		}
	}
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	w.Write(rb)
}

func hijackClose(w http.ResponseWriter) {
	if c, _, err := w.(http.Hijacker).Hijack(); err == nil {
		c.Close()
	}
}

// raw writes a response by hand, announcing length bytes and sending body,
// then closes the connection.
func raw(w http.ResponseWriter, resp *http.Response, body []byte, length int) {
	c, buf, err := w.(http.Hijacker).Hijack()
	if err != nil {
		return
	}
	defer c.Close()
	bw := bufio.NewWriter(io.Writer(c))
	_ = buf
	fmt.Fprintf(bw, "HTTP/1.1 %d %s\r\n", resp.StatusCode, http.StatusText(resp.StatusCode))
	for k, vs := range resp.Header {
		if k == "Content-Length" || k == "Transfer-Encoding" || k == "Connection" {
			continue
		}
		for _, v := range vs {
			fmt.Fprintf(bw, "%s: %s\r\n", k, v)
		}
	}
	fmt.Fprintf(bw, "Content-Length: %d\r\nConnection: close\r\n\r\n", length)
	bw.Write(body)
	bw.Flush()
}
