package core

import (
	"context"
	"errors"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/dmsfs/dmsfs/cache"
	"github.com/dmsfs/dmsfs/remote"
)

// Handle is an open file. Content state lives in the File (all handles of
// a file see the same bytes); the handle knows its access mode, whether it
// wrote since its last flush, and where a sequential reader reads next.
//
// When a close is a save: a flush saves only what this handle wrote since
// its last flush (bash's `>` opens with O_TRUNC, dup2s and closes the
// first descriptor before writing: that flush must not save the truncated
// file); changes that no flush saved (an O_TRUNC with no write, a
// truncate, another handle's writes whose close only made them durable)
// are saved at release, once the last writer is gone.
type Handle struct {
	f     *File
	write bool

	mu      sync.Mutex
	nextOff int64 // guarded by mu
	read    bool  // read from before; guarded by mu
	// run is how many bytes were read in sequence up to nextOff; the
	// read-ahead window is twice that (streamWindow). Guarded by mu.
	run int64
	// prefix is how far the handle read in sequence from the first
	// byte, reads a little out of order included (seqSlack) and reads
	// elsewhere in the file left out; 0 if it did not begin there.
	// Guarded by mu.
	prefix int64
	wrote  bool // a write, truncate or allocate since the last flush; guarded by File.mu
	// trunc: the open's O_TRUNC changed the content and no flush of this
	// handle saved since (`: > f`); its release passes that on to the
	// file (File.truncated). Guarded by File.mu.
	trunc bool

	released atomic.Bool

	// passthru: the kernel reads this handle's file straight from a local
	// copy of its content (FUSE passthrough); backing is that copy
	// (File.passFile). Set at open (chooseIO).
	passthru bool
	backing  *os.File
}

// Backing is the local file holding the content for FUSE passthrough,
// nil for a handle the daemon serves.
func (h *Handle) Backing() *os.File { return h.backing }

// File is the file the handle has open.
func (h *Handle) File() *File { return h.f }

// Open opens the file. keepCache tells the kernel it may keep the pages
// it cached at the last open (the content has not changed since).
func (f *File) Open(ctx context.Context, flags uint32) (h *Handle, keepCache bool, err error) {
	write := flags&syscall.O_ACCMODE != syscall.O_RDONLY
	if write && f.fsys.opts.ReadOnly {
		return nil, false, syscall.EROFS
	}
	ctx, cancel := opContext(ctx)
	defer cancel()
	f.mu.Lock()
	defer f.mu.Unlock()
	truncated := false
	if write && flags&syscall.O_TRUNC != 0 {
		if truncated, err = f.truncate(ctx, 0); err != nil {
			return nil, false, err
		}
	} else if f.keptGen == f.gen {
		keepCache = true
	}
	f.keptGen = f.gen
	h = f.openLocked(flags)
	h.trunc = truncated
	f.chooseIO(h)
	return h, keepCache, nil
}

// chooseIO picks a new handle's I/O mode (mu held, h counted in opens).
// On a read-only mount an open of content kept whole on disk (pinned, or
// in the disk cache) is passed through: the kernel reads that file
// itself, as fast as a local one. Not on a mount that writes: while an
// inode has a passthrough open the kernel fails (EIO) every open that is
// not passed through to the same file, a writer's too, and a writer's
// bytes would then go to the copy instead of to dmsfs.
//
// While a passthrough open lasts, later opens share its copy (the kernel
// keeps one per inode), even if the repository's content changed since;
// they see the new content once all of the file's descriptors are closed.
func (f *File) chooseIO(h *Handle) {
	if !f.fsys.opts.ReadOnly || h.write || f.local != nil || f.doc == nil || !f.exists {
		return
	}
	if f.passthru == 0 {
		if f.opens > 1 {
			return // open in page-cache mode
		}
		if f.passFile = f.fsys.kept(f.contentKey(), f.rf); f.passFile == nil {
			return
		}
	}
	h.passthru, h.backing = true, f.passFile
	f.passthru++
	f.fsys.passOpens.Add(1)
}

// kept opens a local copy of a content: pinned, or in the disk cache.
func (f *FS) kept(key string, rf remote.File) *os.File {
	if f.opts.NoPassthrough {
		return nil
	}
	if fh := f.pinnedContent(rf.ContentID); fh != nil {
		if st, err := fh.Stat(); err == nil && st.Size() == rf.Size {
			return fh
		}
		fh.Close()
	}
	if d := f.blocks.Disk(); d != nil {
		if fh, ok := d.Open(key, rf.Size); ok {
			return fh
		}
	}
	return nil
}

func (f *File) openLocked(flags uint32) *Handle {
	h := &Handle{f: f, write: flags&syscall.O_ACCMODE != syscall.O_RDONLY}
	f.fsys.opened(h)
	f.opens++
	if h.write {
		f.writers++
	}
	return h
}

// truncate sets the size (mu held) and tells whether that changed it.
func (f *File) truncate(ctx context.Context, size int64) (bool, error) {
	f.idle()
	cur := f.rf.Size
	if f.local != nil {
		cur = f.size
	}
	if size == cur && (f.local != nil || f.exists) {
		return false, nil // no change: nothing to save (an O_TRUNC of an empty file)
	}
	if err := f.ensureLocal(ctx, size == 0); err != nil {
		return false, f.fsys.fail("truncate", f.path(), err)
	}
	f.idle()
	if err := f.local.Truncate(size); err != nil {
		return false, err
	}
	f.size = size
	f.dirty = true
	f.setMtimeNow()
	return true, nil
}

// Setattr changes the size, mode, owner or times; h is the handle it came
// through, nil for a change by path.
func (f *File) Setattr(ctx context.Context, h *Handle, in SetAttr) (Attr, error) {
	if f.fsys.opts.ReadOnly {
		return Attr{}, syscall.EROFS
	}
	ctx, cancel := opContext(ctx)
	defer cancel()
	f.mu.Lock()
	defer f.mu.Unlock()
	if cur := f.attrLocked(); mayChown(ctx, in, cur.UID, cur.GID) != nil {
		return Attr{}, syscall.EPERM
	}
	if in.Size != nil {
		changed, err := f.truncate(ctx, *in.Size)
		if err != nil {
			return Attr{}, err
		}
		if h != nil && changed {
			h.wrote = true // a truncate that changes nothing is no write
		}
		// truncate(2) by path, with no descriptor open for writing: no
		// close will save it. (An open with O_TRUNC comes here without a
		// handle too, but then a writer is open and its release saves.)
		if h == nil && f.writers == 0 {
			if err := f.save(ctx); err != nil {
				return Attr{}, f.fsys.fail("truncate", f.path(), err)
			}
		}
	}
	f.attr.apply(in, f.fsys.opts.UID, f.fsys.opts.GID)
	f.saveAttr()
	if in.Mtime != nil {
		f.sendMtime(ctx)
	}
	if f.onServer() && !f.dirty {
		f.showElsewhere(ctx) // the new attributes too
	}
	return f.attrLocked(), nil
}

// Read reads into dest at off and returns the bytes read.
func (h *Handle) Read(ctx context.Context, dest []byte, off int64) ([]byte, error) {
	data, err := h.ReadHeld(ctx, dest, off)
	if err != nil {
		return nil, err
	}
	n := copy(dest, data.Data) // onto itself when they are dest's
	data.Release()
	return dest[:n], nil
}

// ReadHeld is Read, but the bytes read may be a slice of the block cache
// rather than of dest (no copy): they stay as they are until the caller
// releases them, which it must do once it no longer reads them.
func (h *Handle) ReadHeld(ctx context.Context, dest []byte, off int64) (cache.Held, error) {
	f := h.f
	f.mu.Lock()
	if local := f.local; local != nil {
		size := f.size
		f.mu.Unlock()
		if off >= size {
			return cache.Held{}, nil
		}
		n, err := local.ReadAt(dest[:min(int64(len(dest)), size-off)], off)
		if err != nil && err != io.EOF {
			return cache.Held{}, f.fsys.fail("read", f.Path(), err)
		}
		return cache.Held{Data: dest[:n]}, nil
	}
	if f.doc == nil || !f.exists {
		f.mu.Unlock()
		return cache.Held{}, nil
	}
	key, size, fetch, open := f.contentKey(), f.rf.Size, f.fetcher(), f.opener()
	dir, name := f.dir, f.name
	f.mu.Unlock()

	h.mu.Lock()
	start := !h.read && off == 0
	h.mu.Unlock()
	if start && size > cache.BlockSize {
		// A read from the start of a big file: its first block already
		// comes from the stream that reads on if the reader does.
		f.fsys.blocks.Stream(key, size, 0, minWindow, open)
	}
	f.fsys.reads.Add(1)
	// Fetches are shared by concurrent readers: one reader's interrupt
	// must not fail the others.
	bctx := context.WithoutCancel(ctx)
	data, ok, err := f.fsys.blocks.Slice(bctx, key, size, off, int64(len(dest)), fetch)
	n := len(data.Data)
	if !ok {
		n, err = f.fsys.blocks.ReadAt(bctx, key, size, dest, off, fetch)
		data = cache.Held{Data: dest[:n]}
	}
	if err != nil {
		return cache.Held{}, f.fsys.fail("read", f.Path(), err)
	}
	h.mu.Lock()
	end := off + int64(n)
	// The kernel reads ahead with several requests at once, so a
	// sequential reader's reads arrive a little out of order: within a
	// couple of blocks of the furthest end so far is in sequence.
	sequential := off == h.nextOff || h.read && off+seqSlack >= h.nextOff && off <= h.nextOff+seqSlack
	first := !h.read
	h.read = true
	if off == 0 || h.prefix > 0 && off <= h.prefix+seqSlack {
		h.prefix = max(h.prefix, end)
	}
	if !sequential {
		h.run, h.nextOff = 0, end
	}
	h.run += int64(n)
	h.nextOff = max(h.nextOff, end)
	window, next, prefix := streamWindow(h.run, f.fsys.opts.ReadAhead), h.nextOff, h.prefix
	h.mu.Unlock()
	if first && off == 0 && dir != nil && !f.multi {
		dir.readAhead(name)
	}
	if sequential && next < size && !f.fsys.blocks.Stream(key, size, next, window, open) {
		f.fsys.blocks.Prefetch(key, size, next, window, fetch)
	}
	if prefix > 0 {
		// Read from the start in order: where no stream copies it to the
		// disk cache, a copy follows the reader.
		f.fsys.blocks.Keep(key, size, prefix, fetch)
	}
	return data, nil
}

// seqSlack is how far from the last read's end a read still counts as in
// sequence.
const seqSlack = 2 * cache.BlockSize

// minWindow is the read-ahead of a sequential read that just began.
const minWindow = 4 << 20

// streamWindow is how far ahead of a sequential reader the file is read:
// twice what it read in sequence so far, from minWindow up to the
// --read-ahead limit, so that a long sequential read keeps a growing part
// of the round trip's worth of bytes in flight and a short one costs
// little. Random reads (run reset) fetch only what they ask.
func streamWindow(run, limit int64) int64 {
	return max(min(2*run, limit), min(minWindow, limit))
}

// Write writes data at off.
func (h *Handle) Write(ctx context.Context, data []byte, off int64) (int, error) {
	f := h.f
	ctx, cancel := opContext(ctx)
	defer cancel()
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.writable(ctx, "write"); err != nil {
		return 0, err
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
		h.wrote = true
		f.setMtimeNow()
	}
	if err != nil {
		f.writeErr = errnoOf(err)
		f.fsys.log.Error("write failed", "path", f.path(), "err", err)
		return n, f.writeErr
	}
	return n, nil
}

// writable gives the file a spool copy to change, once no operation is
// under way (mu held).
func (f *File) writable(ctx context.Context, op string) error {
	f.idle()
	if err := f.ensureLocal(ctx, false); err != nil {
		return f.fsys.fail(op, f.path(), err)
	}
	f.idle() // the download, if one ran, was an operation
	return nil
}

// errnoOf is the errno behind a local file error (EIO if none).
func errnoOf(err error) syscall.Errno {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return syscall.EIO
}

// Writes tells whether the handle was opened for writing; Flush of one
// that was not does nothing.
func (h *Handle) Writes() bool { return h.write }

// Flush runs on every close(2) of a descriptor. It saves what this handle
// wrote: durable in the spool first, then uploaded (or queued, with
// write-back).
func (h *Handle) Flush(ctx context.Context) error {
	if !h.write {
		return nil
	}
	f := h.f
	ctx, cancel := opContext(ctx)
	defer cancel()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.writeErr != 0 && !f.temp {
		// A write failed: what is local is not what the application meant
		// to save. Uploading it would replace good content with a torso.
		errno := f.writeErr
		f.fsys.log.Error("close after a failed write: the changes are dropped, the repository keeps its content", "path", f.path(), "err", errno)
		f.idle()
		f.abandon(ctx)
		return errno
	}
	if !h.wrote {
		return nil // nothing written through this descriptor: no save (see Handle)
	}
	h.wrote, h.trunc = false, false
	if !f.dirty || f.gone || f.temp {
		return nil
	}
	// Every close after writes saves them, even while another handle is
	// open: the kernel releases handles asynchronously, so an open count
	// cannot tell the last close.
	if err := f.save(ctx); err != nil {
		return f.fsys.fail("close", f.path(), err)
	}
	return nil
}

// Fsync makes the changes durable in the spool.
func (h *Handle) Fsync(ctx context.Context) error {
	f := h.f
	f.mu.Lock()
	defer f.mu.Unlock()
	f.idle()
	if err := f.commit(); err != nil {
		return f.fsys.fail("fsync", f.path(), err)
	}
	if f.local != nil && f.temp {
		if err := f.local.Sync(); err != nil {
			return err
		}
	}
	return nil
}

// Release is the last close of the descriptor. Changes that no flush
// saved are saved now, once no writer is left: uploaded (the application
// is no longer waiting), or queued with write-back.
func (h *Handle) Release(ctx context.Context) error {
	if h.released.Swap(true) {
		return syscall.EBADF
	}
	f := h.f
	defer f.fsys.closed(h)
	ctx, cancel := opContext(ctx)
	defer cancel()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.opens--
	if h.write {
		f.writers--
	}
	if h.passthru {
		if f.passthru--; f.passthru == 0 {
			f.passFile.Close()
			f.passFile = nil
		}
	}
	// A file the upload queue holds (a failed or refused upload) is the
	// queue's to send; an O_TRUNC change that no flush saved is a new
	// save all the same, at the last writer's release (another
	// descriptor open for writing may have kept this one's release from
	// saving it: the reference model found that).
	f.truncated = f.truncated || h.trunc
	if f.writers == 0 && f.dirty && !f.temp && !f.gone && f.writeErr == 0 {
		if !f.fsys.queue.Held(f) || f.truncated {
			if err := f.save(ctx); err != nil {
				f.fsys.fail("close", f.path(), err)
			}
		} else if err := f.commit(); err != nil {
			// The queue's retry sends what the file holds then; the
			// journal must say so too, or a crash before the retry
			// loses the change (a truncate by path while this
			// descriptor was open: the reference model's restarts
			// found it).
			f.fsys.fail("close", f.path(), err)
		}
	}
	f.maybeDropLocal()
	return nil
}

// unsaved tells whether the file has changes that a release may still save.
func (f *File) unsaved() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.dirty && !f.gone && !f.temp
}

// Allocate reserves space in the spool copy (posix_fallocate).
func (h *Handle) Allocate(ctx context.Context, off, size uint64, mode uint32) error {
	f := h.f
	ctx, cancel := opContext(ctx)
	defer cancel()
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.writable(ctx, "fallocate"); err != nil {
		return err
	}
	if err := f.fsys.meter.reserve(int64(off+size) - f.size); err != nil {
		return syscall.ENOSPC
	}
	if err := syscall.Fallocate(int(f.local.Fd()), mode, int64(off), int64(size)); err != nil {
		return err
	}
	if end := int64(off + size); mode&0x01 == 0 && end > f.size { // not FALLOC_FL_KEEP_SIZE
		f.size = end
		f.dirty = true
		h.wrote = true
		f.setMtimeNow()
	}
	return nil
}

// DocID is the document the file shows ("" if none yet).
func (f *File) DocID() remote.ID {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.doc == nil || !f.exists || f.temp {
		return ""
	}
	return f.doc.id
}
