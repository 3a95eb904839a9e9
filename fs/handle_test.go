package fs_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	dfs "github.com/dmsfs/dmsfs/fs"
	"github.com/dmsfs/dmsfs/fs/fstest"
	"github.com/dmsfs/dmsfs/remote/embedded"
	"github.com/dmsfs/dmsfs/remote/remotetest"
)

// TestOpenHandleKeepsItsContent: a file opened before a save by rename
// replaced the document reads the content it was opened with, as on a
// local disk, from the version the repository kept (before, the read
// failed with EIO, or would have mixed the two contents).
func TestOpenHandleKeepsItsContent(t *testing.T) {
	r, err := embedded.Open(t.TempDir(), embedded.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { r.Close() })
	root, err := r.Root(context.Background())
	require.NoError(t, err)
	old := bytes.Repeat([]byte("old content "), 30000)
	_, err = r.Insert(context.Background(), root.ID, "a.txt", remotetest.Content(old))
	require.NoError(t, err)
	e := fstest.Mount(t, r, dfs.Options{})

	h, err := os.Open(e.Path("a.txt"))
	require.NoError(t, err)
	defer h.Close()
	require.NoError(t, os.WriteFile(e.Path("a.txt.new"), []byte("the new, shorter content"), 0o644))
	require.NoError(t, os.Rename(e.Path("a.txt.new"), e.Path("a.txt")))

	got, err := io.ReadAll(h)
	require.NoError(t, err)
	require.True(t, bytes.Equal(old, got), "the open handle reads what it opened (%d bytes)", len(got))
	now, err := os.ReadFile(e.Path("a.txt"))
	require.NoError(t, err)
	require.Equal(t, "the new, shorter content", string(now))
}
