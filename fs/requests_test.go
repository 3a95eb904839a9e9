package fs_test

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	dfs "github.com/dmsfs/dmsfs/fs"
	"github.com/dmsfs/dmsfs/fs/fstest"
	"github.com/dmsfs/dmsfs/remote/embedded"
	"github.com/dmsfs/dmsfs/remote/remotetest"
)

// TestClosingAReaderAsksNothing: the close of a descriptor opened for
// reading, of a file or of an old version, sends the daemon no request
// (FOPEN_NOFLUSH): before, every close waited for a FLUSH that did
// nothing, a round trip per file of an rsync out of the mount. A close
// after writes still flushes, and saves.
func TestClosingAReaderAsksNothing(t *testing.T) {
	fstest.RequireFUSE(t)
	ctx := context.Background()
	r, err := embedded.Open(t.TempDir(), embedded.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { r.Close() })
	root, err := r.Root(ctx)
	require.NoError(t, err)
	first := bytes.Repeat([]byte("first "), 20000)
	_, err = r.Insert(ctx, root.ID, "a.txt", remotetest.Content(first))
	require.NoError(t, err)
	e := fstest.Mount(t, r, dfs.Options{})
	n := e.MustNode("a.txt")
	require.NoError(t, os.WriteFile(e.Path("a.txt"), []byte("second"), 0o644))
	e.RequireVersions(n, 2)

	reqs := fstest.TraceRequests(t, e.Mnt)
	for range 3 {
		require.Equal(t, "second", e.Run("cat", e.Path("a.txt")))
	}
	old := strings.Fields(e.Run("ls", e.Path(".versions/a.txt")))
	require.Len(t, old, 1, "the old version")
	got, err := os.ReadFile(e.Path(".versions/a.txt/" + old[0]))
	require.NoError(t, err)
	require.True(t, bytes.Equal(first, got), "the first version reads back (%d bytes)", len(got))
	c := reqs.Counts()
	require.Positive(t, c["FUSE_OPEN"], "the trace sees the mount's requests: %v", c)
	require.Zero(t, c["FUSE_FLUSH"], "closes of readers: %v", c)

	reqs.Reset()
	require.NoError(t, os.WriteFile(e.Path("a.txt"), []byte("third"), 0o644))
	c = reqs.Counts()
	require.Equal(t, 1, c["FUSE_FLUSH"], "the close of a writer flushes: %v", c)
	e.RequireVersions(n, 3)
}
