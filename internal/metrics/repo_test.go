package metrics_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dmsfs/dmsfs/internal/metrics"
	"github.com/dmsfs/dmsfs/remote"
	"github.com/dmsfs/dmsfs/remote/embedded"
)

// TestWrapperKeepsWhatTheRepositoryIs: through the wrapper, remote.As finds
// the optional interfaces the repository has and only those; calls are
// counted by operation and outcome, bytes both ways, and logged at debug
// level.
func TestWrapperKeepsWhatTheRepositoryIs(t *testing.T) {
	ctx := context.Background()
	inner, err := embedded.Open(t.TempDir(), embedded.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { inner.Close() })
	var log bytes.Buffer
	m := metrics.New()
	r := m.Wrap(inner, "embedded", slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug})))

	_, ok := remote.As[remote.Fields](r)
	require.True(t, ok, "embedded keeps fields")
	_, ok = remote.As[remote.Drafts](r)
	require.False(t, ok, "embedded has no drafts, though the wrapper has the methods")
	_, ok = remote.As[remote.Publisher](r)
	require.False(t, ok)

	root, err := r.Root(ctx)
	require.NoError(t, err)
	body := []byte("twelve bytes")
	n, err := r.Insert(ctx, root.ID, "a.txt", remote.Content{ReaderAt: bytes.NewReader(body), Size: int64(len(body))})
	require.NoError(t, err)
	rc, err := r.Open(ctx, n.ID, "a.txt", 0, -1)
	require.NoError(t, err)
	got, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.NoError(t, rc.Close())
	require.Equal(t, body, got)
	_, err = r.Stat(ctx, remote.ID("no-such-id"))
	require.Error(t, err)

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	text := rec.Body.String()
	for _, want := range []string{
		`dmsfs_remote_requests_total{backend="embedded",op="Insert",outcome="ok"} 1`,
		`dmsfs_remote_requests_total{backend="embedded",op="Stat",outcome="not_found"} 1`,
		`dmsfs_remote_bytes_total{backend="embedded",direction="down"} 12`,
		`dmsfs_remote_bytes_total{backend="embedded",direction="up"} 12`,
	} {
		require.Contains(t, text, want)
	}
	require.Equal(t, 4, strings.Count(log.String(), "msg=remote"), "one line per call:\n%s", log.String())
	require.Contains(t, log.String(), "op=Stat object=no-such-id")
}
