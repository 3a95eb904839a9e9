package reftest

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dmsfs/dmsfs/cache"
	"github.com/dmsfs/dmsfs/fs/core"
	"github.com/dmsfs/dmsfs/remote"
)

// CoreTarget is the FUSE-free core over repo, with its spool in a test
// directory and uploads run only when the test asks (QueueTick of an hour).
func CoreTarget(t testing.TB, repo remote.Repository, opts core.Options) func(now func() time.Time) Target {
	return func(now func() time.Time) Target {
		opts.Now = now
		if opts.DirCacheTime == 0 {
			opts.DirCacheTime = time.Minute
		}
		opts.QueueTick = time.Hour
		if os.Getenv("DMSFS_REFTEST_LOG") != "" && opts.Logger == nil {
			// The core's own account of a failing seed, on stderr.
			opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
		}
		c := &coreTarget{t: t, repo: repo, opts: opts, dir: t.TempDir()}
		c.mount()
		t.Cleanup(func() {
			if c.fs != nil {
				c.fs.Close()
				_ = c.spool.Close()
			}
		})
		return c
	}
}

type coreTarget struct {
	t     testing.TB
	repo  remote.Repository
	opts  core.Options
	dir   string
	spool *cache.Spool
	fs    *core.FS
}

var ctx = context.Background()

func (c *coreTarget) mount() {
	var err error
	c.spool, err = cache.OpenSpool(c.dir)
	require.NoError(c.t, err)
	c.fs, err = core.New(ctx, c.repo, c.spool, c.opts)
	require.NoError(c.t, err)
}

func (c *coreTarget) Remount() error {
	if err := c.fs.Settle(ctx); err != nil {
		return err
	}
	c.fs.Close()
	if err := c.spool.Close(); err != nil {
		return err
	}
	c.mount()
	return nil
}

func (c *coreTarget) Restart() error {
	c.fs.Close()
	if err := c.spool.Close(); err != nil {
		return err
	}
	c.mount()
	return nil
}

func (c *coreTarget) resolve(p string) (core.Node, error) {
	var n core.Node = c.fs.Root()
	if p == "" {
		return n, nil
	}
	for _, name := range strings.Split(p, "/") {
		d, ok := n.(*core.Dir)
		if !ok {
			return nil, syscall.ENOTDIR
		}
		ch, err := d.Lookup(ctx, name)
		if err != nil {
			return nil, err
		}
		n = ch
	}
	return n, nil
}

func (c *coreTarget) dirAt(p string) (*core.Dir, error) {
	n, err := c.resolve(p)
	if err != nil {
		return nil, err
	}
	d, ok := n.(*core.Dir)
	if !ok {
		return nil, syscall.ENOTDIR
	}
	return d, nil
}

func (c *coreTarget) file(p string) (*core.File, error) {
	n, err := c.resolve(p)
	if err != nil {
		return nil, err
	}
	f, ok := n.(*core.File)
	if !ok {
		return nil, syscall.EISDIR
	}
	return f, nil
}

func (c *coreTarget) Open(p string, create, trunc bool) (Handle, error) {
	flags := uint32(syscall.O_RDWR)
	if trunc {
		flags |= syscall.O_TRUNC
	}
	if create {
		d, err := c.dirAt(dirOf(p))
		if err != nil {
			return nil, err
		}
		_, h, err := d.Create(ctx, path.Base(p), flags|syscall.O_CREAT, 0o644)
		return coreHandle{h}, err
	}
	f, err := c.file(p)
	if err != nil {
		return nil, err
	}
	h, _, err := f.Open(ctx, flags)
	return coreHandle{h}, err
}

func (c *coreTarget) OpenRead(p string) (Handle, error) {
	f, err := c.file(p)
	if err != nil {
		return nil, err
	}
	h, _, err := f.Open(ctx, syscall.O_RDONLY)
	return coreHandle{h}, err
}

func (c *coreTarget) Stat(p string) (int64, bool, error) {
	n, err := c.resolve(p)
	if err != nil {
		return 0, false, err
	}
	a := n.Attr()
	return a.Size, a.IsDir(), nil
}

func (c *coreTarget) Readdir(p string) ([]string, error) {
	d, err := c.dirAt(p)
	if err != nil {
		return nil, err
	}
	list, err := d.Readdir(ctx)
	var names []string
	for _, e := range list {
		names = append(names, e.Name)
	}
	return names, err
}

func (c *coreTarget) Rename(from, to string) error {
	sd, err := c.dirAt(dirOf(from))
	if err != nil {
		return err
	}
	dd, err := c.dirAt(dirOf(to))
	if err != nil {
		return err
	}
	return sd.Rename(ctx, path.Base(from), dd, path.Base(to), 0)
}

func (c *coreTarget) Unlink(p string) error {
	d, err := c.dirAt(dirOf(p))
	if err != nil {
		return err
	}
	return d.Unlink(ctx, path.Base(p))
}

func (c *coreTarget) Mkdir(p string) error {
	d, err := c.dirAt(dirOf(p))
	if err != nil {
		return err
	}
	_, err = d.Mkdir(ctx, path.Base(p), 0o755)
	return err
}

func (c *coreTarget) Rmdir(p string) error {
	d, err := c.dirAt(dirOf(p))
	if err != nil {
		return err
	}
	return d.Rmdir(ctx, path.Base(p))
}

func (c *coreTarget) Truncate(p string, size int64) error {
	f, err := c.file(p)
	if err != nil {
		return err
	}
	_, err = f.Setattr(ctx, nil, core.SetAttr{Size: &size})
	return err
}

func (c *coreTarget) Sync() error   { return c.fs.Sync(ctx, nil) }
func (c *coreTarget) Settle() error { return c.fs.Settle(ctx) }

// DocID is where the core shows which document (Config.DocID).
func DocID(t Target, p string) remote.ID {
	c, ok := t.(*coreTarget)
	if !ok {
		return ""
	}
	f, err := c.file(p)
	if err != nil {
		return ""
	}
	return f.DocID()
}

type coreHandle struct{ h *core.Handle }

func (h coreHandle) WriteAt(b []byte, off int64) error {
	_, err := h.h.Write(ctx, b, off)
	return err
}

func (h coreHandle) ReadAt(b []byte, off int64) (int, error) {
	data, err := h.h.Read(ctx, b, off)
	if err == nil && len(data) == 0 {
		return 0, io.EOF
	}
	return copy(b, data), err
}

func (h coreHandle) Truncate(size int64) error {
	_, err := h.h.File().Setattr(ctx, h.h, core.SetAttr{Size: &size})
	return err
}

func (h coreHandle) Fsync() error { return h.h.Fsync(ctx) }
func (h coreHandle) Flush() error { return h.h.Flush(ctx) }
func (h coreHandle) Close() error { return h.h.Release(ctx) }
