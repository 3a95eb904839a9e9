package httpx

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestIdleTimeout: a body that stops halfway fails the read after the idle
// time; a slow body that keeps coming is read whole.
func TestIdleTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "20")
		io.WriteString(w, "first half")
		w.(http.Flusher).Flush()
		if r.URL.Path == "/stall" {
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		for range 10 { // slower than nothing, faster than the idle time
			time.Sleep(50 * time.Millisecond)
			io.WriteString(w, "x")
			w.(http.Flusher).Flush()
		}
	}))
	defer srv.Close()
	defer close(release)
	hc := &http.Client{Transport: IdleTimeout(http.DefaultTransport, time.Second)}

	resp, err := hc.Get(srv.URL + "/stall")
	require.NoError(t, err)
	start := time.Now()
	_, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Error(t, err, "the stalled body is cut off")
	require.Less(t, time.Since(start), 10*time.Second)

	resp, err = hc.Get(srv.URL + "/slow")
	require.NoError(t, err)
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, "first half"+strings.Repeat("x", 10), string(b))
}
