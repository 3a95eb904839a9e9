package fs_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	dfs "github.com/dmsfs/dmsfs/fs"
	"github.com/dmsfs/dmsfs/fs/fstest"
	"github.com/dmsfs/dmsfs/remote/embedded"
	"github.com/dmsfs/dmsfs/remote/remotetest"
)

// TestDiskCacheAndPassthrough: a big file read whole is kept on disk.
// On a mount that writes, it is not passed through (the kernel would fail
// a writer's open beside a passthrough reader with EIO), and a writer
// opened beside a reader works. On a read-only mount of the same cache,
// read-only opens are passed through to the copy: the kernel reads it
// without the daemon, and the bytes are right.
func TestDiskCacheAndPassthrough(t *testing.T) {
	r, err := embedded.Open(t.TempDir(), embedded.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { r.Close() })
	root, err := r.Root(context.Background())
	require.NoError(t, err)
	old := bytes.Repeat([]byte("old content, block after block\n"), 100000) // 3 MiB: streamed
	_, err = r.Insert(context.Background(), root.ID, "big.txt", remotetest.Content(old))
	require.NoError(t, err)
	e := fstest.Mount(t, r, dfs.Options{DiskCacheSize: 1 << 30})

	got, err := os.ReadFile(e.Path("big.txt")) // read whole: kept on disk
	require.NoError(t, err)
	require.Equal(t, old, got)
	// The copy is committed beside the read, after its last block.
	require.Eventually(t, func() bool { return e.FS.Stats().DiskCacheBytes == int64(len(old)) }, time.Minute, 10*time.Millisecond,
		"the whole read leaves a copy on disk")

	a, err := os.Open(e.Path("big.txt"))
	require.NoError(t, err)
	head := make([]byte, 1000)
	_, err = io.ReadFull(a, head)
	require.NoError(t, err)
	require.Equal(t, old[:1000], head)
	require.Zero(t, e.FS.Stats().PassthroughOpens, "a mount that writes passes nothing through")
	w, err := os.OpenFile(e.Path("big.txt"), os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err, "a writer beside a reader")
	_, err = w.WriteString("appended\n")
	require.NoError(t, err)
	require.NoError(t, w.Close())
	require.NoError(t, a.Close())
	now := append(append([]byte(nil), old...), "appended\n"...)
	got, err = os.ReadFile(e.Path("big.txt"))
	require.NoError(t, err)
	require.Equal(t, now, got)
	e.Settle()

	// Read-only, same cache directory: the new content is read whole once
	// (kept on disk), then passed through.
	e.Opts.ReadOnly = true
	e.Remount(false)
	got, err = os.ReadFile(e.Path("big.txt"))
	require.NoError(t, err)
	require.Equal(t, now, got)
	require.Eventually(t, func() bool { return e.FS.Stats().DiskCacheBytes == int64(len(old)+len(now)) }, time.Minute, 10*time.Millisecond)
	reads, opens := e.FS.Stats().Reads, e.FS.Stats().PassthroughOpens
	b, err := os.Open(e.Path("big.txt"))
	require.NoError(t, err)
	c, err := os.Open(e.Path("big.txt")) // shares b's copy
	require.NoError(t, err)
	for _, fh := range []*os.File{b, c} {
		got, err := io.ReadAll(fh)
		require.NoError(t, err)
		require.Equal(t, now, got)
		require.NoError(t, fh.Close())
	}
	require.Equal(t, opens+2, e.FS.Stats().PassthroughOpens)
	if os.Geteuid() == 0 {
		require.Equal(t, reads, e.FS.Stats().Reads, "the kernel read the copy itself")
	}
}
