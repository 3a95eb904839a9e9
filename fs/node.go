package fs

import (
	"context"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/dmsfs/dmsfs/cache"
	"github.com/dmsfs/dmsfs/fs/core"
)

// dirNode, fileNode and viewNode are the kernel's view of the core's
// nodes. Each wraps one core node and is keyed by its inode number, so
// that go-fuse finds the inode it already has for a node looked up again.
type dirNode struct {
	gofs.Inode
	d *core.Dir
	k *kernel
}

type fileNode struct {
	gofs.Inode
	f *core.File
	k *kernel
}

// viewNode is a node of the read-only views (.versions, .renditions).
type viewNode struct {
	gofs.Inode
	v core.View
	k *kernel
}

// kernel keeps the inodes the kernel holds by inode number, so that the
// core's change poller can tell it what to forget (core.Notifier).
type kernel struct {
	inodes sync.Map // inode number → *gofs.Inode
}

var _ core.Notifier = (*kernel)(nil)

// inode returns the kernel's inode for a core node under parent.
func (k *kernel) inode(ctx context.Context, parent *gofs.Inode, n core.Node) *gofs.Inode {
	var in *gofs.Inode
	switch x := n.(type) {
	case *core.Dir:
		in = parent.NewInode(ctx, &dirNode{d: x, k: k}, gofs.StableAttr{Mode: syscall.S_IFDIR, Ino: x.Ino()})
	case *core.File:
		in = parent.NewInode(ctx, &fileNode{f: x, k: k}, gofs.StableAttr{Mode: syscall.S_IFREG, Ino: x.Ino()})
	case core.View:
		mode := uint32(syscall.S_IFREG)
		if x.IsDir() {
			mode = syscall.S_IFDIR
		}
		in = parent.NewInode(ctx, &viewNode{v: x, k: k}, gofs.StableAttr{Mode: mode, Ino: x.Ino()})
	default:
		panic("unknown core node")
	}
	k.inodes.Store(in.StableAttr().Ino, in)
	return in
}

// EntryChanged drops the kernel's entry for name in parent.
func (k *kernel) EntryChanged(parent uint64, name string) {
	if in, ok := k.inodes.Load(parent); ok {
		_ = in.(*gofs.Inode).NotifyEntry(name) // ENOENT: the kernel holds none
	}
}

// ContentChanged drops the kernel's pages and attributes of ino.
func (k *kernel) ContentChanged(ino uint64) {
	if in, ok := k.inodes.Load(ino); ok {
		_ = in.(*gofs.Inode).NotifyContent(0, 0)
	}
}

func (n *dirNode) OnForget()  { n.k.inodes.CompareAndDelete(n.StableAttr().Ino, n.EmbeddedInode()) }
func (n *fileNode) OnForget() { n.k.inodes.CompareAndDelete(n.StableAttr().Ino, n.EmbeddedInode()) }
func (n *viewNode) OnForget() { n.k.inodes.CompareAndDelete(n.StableAttr().Ino, n.EmbeddedInode()) }

func fill(a core.Attr, out *fuse.Attr) {
	out.Mode = a.Mode
	out.Size = uint64(a.Size)
	out.Blocks = (out.Size + 511) / 512
	out.Blksize = cache.BlockSize
	out.Nlink = a.Nlink
	t := a.Mtime
	out.SetTimes(nil, &t, &t)
	out.Uid, out.Gid = a.UID, a.GID
}

func setAttrIn(in *fuse.SetAttrIn) core.SetAttr {
	var s core.SetAttr
	if v, ok := in.GetSize(); ok {
		size := int64(v)
		s.Size = &size
	}
	if v, ok := in.GetMode(); ok {
		s.Mode = &v
	}
	if v, ok := in.GetUID(); ok {
		s.UID = &v
	}
	if v, ok := in.GetGID(); ok {
		s.GID = &v
	}
	if v, ok := in.GetMTime(); ok {
		t := v
		s.Mtime = &t
	}
	return s
}

func dirEntries(list []core.DirEntry) []fuse.DirEntry {
	out := make([]fuse.DirEntry, len(list))
	for i, e := range list {
		out[i] = fuse.DirEntry{Name: e.Name, Mode: syscall.S_IFREG}
		if e.Dir {
			out[i].Mode = syscall.S_IFDIR
		}
	}
	return out
}

// Directories.

func (n *dirNode) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	fill(n.d.Attr(), &out.Attr)
	return 0
}

func (n *dirNode) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	a, err := n.d.Setattr(caller(ctx), setAttrIn(in))
	if err != nil {
		return errno(err)
	}
	fill(a, &out.Attr)
	return 0
}

func (n *dirNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	ch, err := n.d.Lookup(ctx, name)
	if err != nil {
		return nil, errno(err)
	}
	fill(ch.Attr(), &out.Attr)
	return n.k.inode(ctx, n.EmbeddedInode(), ch), 0
}

func (n *dirNode) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	list, err := n.d.Readdir(ctx)
	if err != nil {
		return nil, errno(err)
	}
	return gofs.NewListDirStream(dirEntries(list)), 0
}

func (n *dirNode) OpendirHandle(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	list, keep, err := n.d.Listing(ctx)
	if err != nil {
		return nil, 0, errno(err)
	}
	var open uint32
	if keep {
		open = fuse.FOPEN_CACHE_DIR | fuse.FOPEN_KEEP_CACHE
	}
	return gofs.NewListDirStream(dirEntries(list)).(gofs.FileHandle), open, 0
}

func (n *dirNode) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	sub, err := n.d.Mkdir(caller(ctx), name, mode)
	if err != nil {
		return nil, errno(err)
	}
	fill(sub.Attr(), &out.Attr)
	return n.k.inode(ctx, n.EmbeddedInode(), sub), 0
}

func (n *dirNode) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	f, h, err := n.d.Create(caller(ctx), name, flags, mode)
	if err != nil {
		return nil, nil, 0, errno(err)
	}
	fill(f.Attr(), &out.Attr)
	return n.k.inode(ctx, n.EmbeddedInode(), f), &fileHandle{h: h}, 0, 0
}

func (n *dirNode) Mknod(ctx context.Context, name string, mode uint32, dev uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	f, err := n.d.Mknod(caller(ctx), name, mode)
	if err != nil {
		return nil, errno(err)
	}
	fill(f.Attr(), &out.Attr)
	return n.k.inode(ctx, n.EmbeddedInode(), f), 0
}

// Link and Symlink: a repository keeps documents, not links to them.
func (n *dirNode) Link(ctx context.Context, target gofs.InodeEmbedder, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return nil, errno(n.d.Refuse("link", name, "hard links"))
}

func (n *dirNode) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return nil, errno(n.d.Refuse("symlink", name, "symbolic links"))
}

func (n *dirNode) Unlink(ctx context.Context, name string) syscall.Errno {
	return errno(n.d.Unlink(ctx, name))
}

func (n *dirNode) Rmdir(ctx context.Context, name string) syscall.Errno {
	return errno(n.d.Rmdir(ctx, name))
}

func (n *dirNode) Rename(ctx context.Context, name string, newParent gofs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	dst, ok := newParent.(*dirNode)
	if !ok {
		return syscall.EROFS // into .versions
	}
	return errno(n.d.Rename(ctx, name, dst.d, newName, flags))
}

func (n *dirNode) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	st, err := n.d.FS().Statfs()
	if err != nil {
		return gofs.ToErrno(err)
	}
	out.FromStatfsT(&st)
	out.NameLen = 255
	return 0
}

// Files.

func (n *fileNode) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	fill(n.f.Attr(), &out.Attr)
	return 0
}

func (n *fileNode) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	var h *core.Handle
	if x, ok := fh.(interface{ handle() *core.Handle }); ok {
		h = x.handle()
	}
	a, err := n.f.Setattr(caller(ctx), h, setAttrIn(in))
	if err != nil {
		return errno(err)
	}
	fill(a, &out.Attr)
	return 0
}

func (n *fileNode) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	h, keep, err := n.f.Open(ctx, flags)
	if err != nil {
		return nil, 0, errno(err)
	}
	var open uint32
	if keep {
		// The content is what the kernel cached at the last open.
		open = fuse.FOPEN_KEEP_CACHE
	}
	if !h.Writes() {
		// The close of a descriptor that cannot write saves nothing
		// (core.Handle.Flush): the kernel need not send FLUSH and wait
		// for its answer at each close, a round trip per file of a
		// cp -r or rsync out of the mount.
		open |= fuse.FOPEN_NOFLUSH
	}
	if h.Backing() != nil {
		return &passthroughHandle{fileHandle{h: h}}, open, 0
	}
	return &fileHandle{h: h}, open, 0
}

// fileHandle is an open file.
type fileHandle struct{ h *core.Handle }

func (h *fileHandle) handle() *core.Handle { return h.h }

// passthroughHandle is an open file the kernel reads from a local copy
// of its content (FUSE passthrough); go-fuse registers the descriptor
// with the kernel at open, or goes on without it where the kernel or
// the mount's privileges do not allow it.
type passthroughHandle struct{ fileHandle }

var _ gofs.FilePassthroughFder = (*passthroughHandle)(nil)

func (h *passthroughHandle) PassthroughFd() (int, bool) {
	return int(h.h.Backing().Fd()), true
}

func (h *fileHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	data, err := h.h.ReadHeld(ctx, dest, off)
	if err != nil {
		return nil, errno(err)
	}
	return &heldResult{data: data}, 0
}

// heldResult is a read's reply of bytes the block cache holds until
// go-fuse has written them to the kernel (Done). It offers them as
// Slices: go-fuse then writes them and calls Done after the write. (A
// result that only has Bytes is flattened, and Done called, before the
// write when splice is off, as it is here.)
type heldResult struct {
	data cache.Held
	done atomic.Bool
}

var _ interface {
	fuse.ReadResult
	Slices() ([][]byte, fuse.Status)
} = (*heldResult)(nil)

func (r *heldResult) Size() int { return len(r.data.Data) }

func (r *heldResult) Bytes([]byte) ([]byte, fuse.Status) { return r.data.Data, fuse.OK }

func (r *heldResult) Slices() ([][]byte, fuse.Status) { return [][]byte{r.data.Data}, fuse.OK }

// Done releases the bytes once, however often go-fuse calls it.
func (r *heldResult) Done() {
	if r.done.CompareAndSwap(false, true) {
		r.data.Release()
	}
}

func (h *fileHandle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	n, err := h.h.Write(ctx, data, off)
	return uint32(n), errno(err)
}

func (h *fileHandle) Flush(ctx context.Context) syscall.Errno { return errno(h.h.Flush(ctx)) }

func (h *fileHandle) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	return errno(h.h.Fsync(ctx))
}

func (h *fileHandle) Release(ctx context.Context) syscall.Errno { return errno(h.h.Release(ctx)) }

func (h *fileHandle) Allocate(ctx context.Context, off uint64, size uint64, mode uint32) syscall.Errno {
	return errno(h.h.Allocate(ctx, off, size, mode))
}

// The views (.versions, .renditions): read-only.

// uncached is the attribute timeout of attributes the kernel must ask
// for again at each use: go-fuse puts the mount's own in place of 0.
const uncached = time.Nanosecond

func (n *viewNode) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	a := n.v.Attr()
	fill(a, &out.Attr)
	if a.Uncached {
		out.SetTimeout(uncached)
	}
	return 0
}

func (n *viewNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	ch, err := n.v.Lookup(ctx, name)
	if err != nil {
		return nil, errno(err)
	}
	a := ch.Attr()
	fill(a, &out.Attr)
	if a.Uncached {
		out.SetAttrTimeout(uncached)
	}
	return n.k.inode(ctx, n.EmbeddedInode(), ch), 0
}

func (n *viewNode) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	list, err := n.v.Readdir(ctx)
	if err != nil {
		return nil, errno(err)
	}
	return gofs.NewListDirStream(dirEntries(list)), 0
}

func (n *viewNode) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if flags&syscall.O_ACCMODE != syscall.O_RDONLY || flags&syscall.O_TRUNC != 0 {
		return nil, 0, syscall.EROFS
	}
	r, how, err := n.v.Open(ctx)
	if err != nil {
		return nil, 0, errno(err)
	}
	open := uint32(fuse.FOPEN_NOFLUSH) // a view is read-only: a close saves nothing
	if how.KeepCache {
		open |= fuse.FOPEN_KEEP_CACHE
	}
	if how.Direct {
		open |= fuse.FOPEN_DIRECT_IO
	}
	return &viewHandle{r: r}, open, 0
}

// viewHandle is an open file of a view.
type viewHandle struct{ r core.ViewReader }

func (h *viewHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	data, err := h.r.Read(ctx, dest, off)
	if err != nil {
		return nil, errno(err)
	}
	return fuse.ReadResultData(data), 0
}

func (n *viewNode) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return syscall.EROFS
}

func (n *viewNode) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	return nil, nil, 0, syscall.EROFS
}

func (n *viewNode) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}

func (n *viewNode) Unlink(ctx context.Context, name string) syscall.Errno { return syscall.EROFS }

func (n *viewNode) Rmdir(ctx context.Context, name string) syscall.Errno { return syscall.EROFS }

func (n *viewNode) Rename(ctx context.Context, name string, newParent gofs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	return syscall.EROFS
}
