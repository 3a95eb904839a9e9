package fs

import (
	"context"
	"io"
	"sync"
	"sync/atomic"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// handle is an open file. Content state lives in the File (all handles of a
// file see the same bytes); the handle only knows its access mode and where
// a sequential reader will read next.
type handle struct {
	f     *File
	write bool

	mu      sync.Mutex
	nextOff int64 // guarded by mu

	released atomic.Bool
}

func (f *File) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	f.fillAttr(&out.Attr)
	return 0
}

func (f *File) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	write := flags&syscall.O_ACCMODE != syscall.O_RDONLY
	if write && f.fsys.opts.ReadOnly {
		return nil, 0, syscall.EROFS
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var fuseFlags uint32
	if write && flags&syscall.O_TRUNC != 0 {
		if errno := f.truncate(ctx, 0); errno != 0 {
			return nil, 0, errno
		}
	} else if f.keptGen == f.gen {
		// The content is what the kernel cached at the last open.
		fuseFlags |= fuse.FOPEN_KEEP_CACHE
	}
	f.keptGen = f.gen
	return f.openLocked(flags), fuseFlags, 0
}

func (f *File) openLocked(flags uint32) *handle {
	h := &handle{f: f, write: flags&syscall.O_ACCMODE != syscall.O_RDONLY}
	f.opens++
	if h.write {
		f.writers++
	}
	return h
}

// truncate sets the size (mu held).
func (f *File) truncate(ctx context.Context, size int64) syscall.Errno {
	if err := f.ensureLocal(ctx, size == 0); err != nil {
		return f.fsys.fail("truncate", f.path(), err)
	}
	if err := f.local.Truncate(size); err != nil {
		return gofs.ToErrno(err)
	}
	f.size = size
	f.dirty = true
	f.setMtimeNow()
	return 0
}

func (f *File) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if f.fsys.opts.ReadOnly {
		return syscall.EROFS
	}
	ctx, cancel := ctxTimeout(ctx)
	defer cancel()
	f.mu.Lock()
	defer f.mu.Unlock()
	if size, ok := in.GetSize(); ok {
		if errno := f.truncate(ctx, int64(size)); errno != 0 {
			return errno
		}
		// truncate(2) by path, with no descriptor open for writing: no
		// close will save it. (An open with O_TRUNC comes here without a
		// handle too, but then a writer is open and its close saves.)
		if fh == nil && f.writers == 0 {
			if err := f.save(ctx); err != nil {
				return f.fsys.fail("truncate", f.path(), err)
			}
		}
	}
	setLocalAttr(&f.attr, in, f.fsys)
	f.saveAttr()
	f.fillAttrLocked(&out.Attr)
	return 0
}

func (h *handle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	f := h.f
	f.mu.Lock()
	if local := f.local; local != nil {
		size := f.size
		f.mu.Unlock()
		if off >= size {
			return fuse.ReadResultData(nil), 0
		}
		n, err := local.ReadAt(dest[:min(int64(len(dest)), size-off)], off)
		if err != nil && err != io.EOF {
			return nil, f.fsys.fail("read", f.path(), err)
		}
		return fuse.ReadResultData(dest[:n]), 0
	}
	if f.doc == nil || !f.exists {
		f.mu.Unlock()
		return fuse.ReadResultData(nil), 0
	}
	key, size, fetch := f.contentKey(), f.rf.Size, f.fetcher()
	f.mu.Unlock()

	// Fetches are shared by concurrent readers: one reader's interrupt
	// must not fail the others.
	bctx := context.WithoutCancel(ctx)
	data, ok, err := f.fsys.blocks.Slice(bctx, key, size, off, int64(len(dest)), fetch)
	n := len(data)
	if !ok {
		n, err = f.fsys.blocks.ReadAt(bctx, key, size, dest, off, fetch)
		data = dest[:n]
	}
	if err != nil {
		return nil, f.fsys.fail("read", f.path(), err)
	}
	h.mu.Lock()
	sequential := off == h.nextOff
	h.nextOff = off + int64(n)
	h.mu.Unlock()
	if sequential && off+int64(n) < size {
		f.fsys.blocks.Prefetch(key, size, off+int64(n), f.fsys.opts.ReadAhead, fetch)
	}
	return fuse.ReadResultData(data), 0
}

func (h *handle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	f := h.f
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.ensureLocal(ctx, false); err != nil {
		return 0, f.fsys.fail("write", f.path(), err)
	}
	if err := f.fsys.meter.reserve(off + int64(len(data)) - f.size); err != nil {
		f.writeErr = syscall.ENOSPC
		f.fsys.log.Error("write refused: the spool is full (--spool-size)", "path", f.path())
		return 0, syscall.ENOSPC
	}
	n, err := f.local.WriteAt(data, off)
	if end := off + int64(n); end > f.size {
		f.size = end
	}
	if n > 0 {
		f.dirty = true
		f.setMtimeNow()
	}
	if err != nil {
		f.writeErr = gofs.ToErrno(err)
		f.fsys.log.Error("write failed", "path", f.path(), "err", err)
		return uint32(n), f.writeErr
	}
	return uint32(n), 0
}

// Flush runs on every close(2) of a descriptor. It saves changed content:
// durable in the spool first, then uploaded (or queued, with write-back).
func (h *handle) Flush(ctx context.Context) syscall.Errno {
	if !h.write {
		return 0
	}
	f := h.f
	ctx, cancel := ctxTimeout(ctx)
	defer cancel()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.writeErr != 0 && !f.temp {
		// A write failed: what is local is not what the application meant
		// to save. Uploading it would replace good content with a torso.
		errno := f.writeErr
		f.fsys.log.Error("close after a failed write: the changes are dropped, the repository keeps its content", "path", f.path(), "err", errno)
		f.abandon(ctx)
		return errno
	}
	if !f.dirty || f.gone || f.temp {
		return 0
	}
	// Every close of changed content saves it, even while another handle
	// is open: the kernel releases handles asynchronously, so an open
	// count cannot tell the last close.
	if err := f.save(ctx); err != nil {
		return f.fsys.fail("close", f.path(), err)
	}
	return 0
}

func (h *handle) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	f := h.f
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.commit(); err != nil {
		return f.fsys.fail("fsync", f.path(), err)
	}
	if f.local != nil && f.temp {
		if err := f.local.Sync(); err != nil {
			return gofs.ToErrno(err)
		}
	}
	return 0
}

func (h *handle) Release(ctx context.Context) syscall.Errno {
	if h.released.Swap(true) {
		return syscall.EBADF
	}
	f := h.f
	f.mu.Lock()
	defer f.mu.Unlock()
	f.opens--
	if h.write {
		f.writers--
	}
	if f.writers == 0 && f.dirty && !f.temp && !f.gone {
		// Changes that no close saved (its upload failed, or another
		// writer's close only made them durable) are queued.
		if err := f.commit(); err != nil {
			f.fsys.fail("close", f.path(), err)
		}
		f.fsys.up.ensureQueued(f, f.fsys.opts.WriteBack)
	}
	f.maybeDropLocal()
	return 0
}

// Allocate reserves space in the spool copy (posix_fallocate).
func (h *handle) Allocate(ctx context.Context, off uint64, size uint64, mode uint32) syscall.Errno {
	f := h.f
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.ensureLocal(ctx, false); err != nil {
		return f.fsys.fail("fallocate", f.path(), err)
	}
	if err := f.fsys.meter.reserve(int64(off+size) - f.size); err != nil {
		return syscall.ENOSPC
	}
	if err := syscall.Fallocate(int(f.local.Fd()), mode, int64(off), int64(size)); err != nil {
		return gofs.ToErrno(err)
	}
	if end := int64(off + size); mode&0x01 == 0 && end > f.size { // not FALLOC_FL_KEEP_SIZE
		f.size = end
		f.dirty = true
		f.setMtimeNow()
	}
	return 0
}
