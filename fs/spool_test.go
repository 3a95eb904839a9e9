package fs_test

import (
	"bytes"
	"os"
	"os/exec"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	dfs "github.com/dmsfs/dmsfs/fs"
	"github.com/dmsfs/dmsfs/fs/fstest"
	"github.com/dmsfs/dmsfs/remote/embedded"
)

// writeFile writes b with one write per MiB and returns the errors of the
// writes and of close, as an application sees them.
func writeFile(path string, b []byte) (writeErr, closeErr error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err, nil
	}
	for off := 0; off < len(b) && writeErr == nil; off += 1 << 20 {
		_, writeErr = f.Write(b[off:min(len(b), off+1<<20)])
	}
	return writeErr, f.Close()
}

// spoolFull checks what a full spool does: the writer gets ENOSPC, the
// repository keeps its content (a new file is not uploaded half, an
// overwritten document keeps its version), and once there is room again
// writing works.
func spoolFull(t *testing.T, e *fstest.Env, big int) {
	small := fstest.WriteFile(t, e.Path("small.bin"), 2<<20, 1)
	doc := e.MustNode("small.bin")

	werr, cerr := writeFile(e.Path("big.bin"), bytes.Repeat([]byte("x"), big))
	require.ErrorIs(t, werr, syscall.ENOSPC, "the writer is told")
	require.ErrorIs(t, cerr, syscall.ENOSPC, "close reports it too")
	if n, err := e.Node("big.bin"); err == nil {
		require.Fail(t, "a half-written new file reached the repository", "%d bytes", n.Files[0].Size)
	}

	werr, cerr = writeFile(e.Path("small.bin"), bytes.Repeat([]byte("y"), big))
	require.ErrorIs(t, werr, syscall.ENOSPC)
	require.Error(t, cerr)
	got, err := os.ReadFile(e.Path("small.bin"))
	require.NoError(t, err)
	require.Equal(t, small, got, "the document still shows its content")
	now := e.MustNode("small.bin")
	require.Equal(t, doc.Token, now.Token, "no version was made from the torso")
	require.Equal(t, small, e.Content(now, ""))

	require.NoError(t, os.Remove(e.Path("big.bin")))
	after := fstest.WriteFile(t, e.Path("after.bin"), 1<<20, 3)
	require.Equal(t, after, e.Content(e.MustNode("after.bin"), ""))
	e.Remount(false)
	got, err = os.ReadFile(e.Path("small.bin"))
	require.NoError(t, err)
	require.Equal(t, small, got)
}

func embeddedRepo(t *testing.T) *embedded.Repo {
	r, err := embedded.Open(t.TempDir(), embedded.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { r.Close() })
	return r
}

// TestSpoolLimit: --spool-size is respected.
func TestSpoolLimit(t *testing.T) {
	e := fstest.Mount(t, embeddedRepo(t), dfs.Options{SpoolLimit: 12 << 20})
	spoolFull(t, e, 20<<20)
}

// TestFullCacheDisk: the cache directory's disk (a 16 MiB tmpfs) fills up.
func TestFullCacheDisk(t *testing.T) {
	fstest.RequireFUSE(t)
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", dir).CombinedOutput(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("mount tmpfs: %v: %s", err, out)
		}
		t.Skipf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	e := fstest.MountIn(t, embeddedRepo(t), dfs.Options{}, dir)
	spoolFull(t, e, 24<<20)
}
