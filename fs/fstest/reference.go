package fstest

import (
	"context"
	"errors"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	dfs "github.com/dmsfs/dmsfs/fs"
	"github.com/dmsfs/dmsfs/fs/core/reftest"
	"github.com/dmsfs/dmsfs/remote"
)

// testReferenceModel runs a short reference-model sequence (package
// reftest) through a real mount: real open, dup+close, write, rename,
// truncate and unlink calls, the kernel between them.
func testReferenceModel(t *testing.T, newRepo func(t *testing.T) remote.Repository) {
	seeds, ops := reftest.Seeds(1, 300)
	for _, seed := range seeds {
		repo := newRepo(t)
		reftest.Run(t, reftest.Config{Repo: repo, Seed: seed, Ops: ops, EndOnly: true,
			Target: func(now func() time.Time) reftest.Target {
				// The kernel keeps nothing (its cache follows its own
				// clock), the mount's listings follow the model's.
				e := Mount(t, repo, dfs.Options{Now: now, DirCacheTime: time.Minute, NoKernelCache: true, QueueTick: time.Hour})
				m := &mountTarget{e: e, files: map[*os.File]bool{}}
				t.Cleanup(m.closeAll) // before the unmount: a failed run leaves files open
				return m
			}})
	}
}

// mountTarget is the reference model's view of a real mount.
type mountTarget struct {
	e     *Env
	open  int // handles the model holds open
	files map[*os.File]bool
}

func (m *mountTarget) closeAll() {
	for f := range m.files {
		f.Close()
	}
}

func (m *mountTarget) path(p string) string { return m.e.Path(p) }

func (m *mountTarget) Open(p string, create, trunc bool) (reftest.Handle, error) {
	flags := os.O_RDWR
	if create {
		flags |= os.O_CREATE
	}
	if trunc {
		flags |= os.O_TRUNC
	}
	f, err := os.OpenFile(m.path(p), flags, 0o644)
	if err != nil {
		return nil, err
	}
	m.open++
	m.files[f] = true
	return &mountHandle{m: m, f: f}, nil
}

func (m *mountTarget) OpenRead(p string) (reftest.Handle, error) {
	f, err := os.Open(m.path(p))
	if err != nil {
		return nil, err
	}
	m.open++
	m.files[f] = true
	return &mountHandle{m: m, f: f}, nil
}

func (m *mountTarget) Stat(p string) (int64, bool, error) {
	st, err := os.Stat(m.path(p))
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return 0, false, pe.Err
		}
		return 0, false, err
	}
	return st.Size(), st.IsDir(), nil
}

func (m *mountTarget) Readdir(p string) ([]string, error) {
	entries, err := os.ReadDir(m.path(p))
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names, err
}

func (m *mountTarget) Rename(from, to string) error { return os.Rename(m.path(from), m.path(to)) }
func (m *mountTarget) Unlink(p string) error        { return os.Remove(m.path(p)) }
func (m *mountTarget) Mkdir(p string) error         { return os.Mkdir(m.path(p), 0o755) }
func (m *mountTarget) Rmdir(p string) error {
	err := syscall.Rmdir(m.path(p))
	if err != nil {
		return err // a bare errno, as the model compares
	}
	return nil
}
func (m *mountTarget) Truncate(p string, size int64) error { return os.Truncate(m.path(p), size) }

func (m *mountTarget) Sync() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return m.e.FS.Sync(ctx, nil)
}

func (m *mountTarget) Settle() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return m.e.FS.Settle(ctx)
}

func (m *mountTarget) Remount() error {
	m.e.Remount(false)
	return nil
}

func (m *mountTarget) Restart() error {
	m.e.Restart()
	return nil
}

type mountHandle struct {
	m *mountTarget
	f *os.File
}

func (h *mountHandle) WriteAt(b []byte, off int64) error { _, err := h.f.WriteAt(b, off); return err }
func (h *mountHandle) ReadAt(b []byte, off int64) (int, error) {
	return h.f.ReadAt(b, off)
}
func (h *mountHandle) Truncate(size int64) error { return h.f.Truncate(size) }
func (h *mountHandle) Fsync() error              { return h.f.Sync() }

// Flush closes a second descriptor of the open file: the kernel sends a
// FLUSH and keeps the file open.
func (h *mountHandle) Flush() error {
	fd, err := syscall.Dup(int(h.f.Fd()))
	if err != nil {
		return err
	}
	return syscall.Close(fd)
}

// Close closes the last descriptor and waits for the release the kernel
// sends after it, which may save.
func (h *mountHandle) Close() error {
	err := h.f.Close()
	delete(h.m.files, h.f)
	h.m.open--
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(h.m.e.T, h.m.e.FS.WaitHandles(ctx, h.m.open))
	return err
}
