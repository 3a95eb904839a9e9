package fs

import (
	"context"
	"errors"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"golang.org/x/sys/unix"

	"github.com/dmsfs/dmsfs/remote"
)

// Rename follows what saving applications need:
//   - a file renamed over a document replaces that document's content (a
//     new version, same document id): editors, LibreOffice and rsync save so;
//   - a document renamed to a temp name stays on the server under its name,
//     hidden, until the temp file is deleted (vim's "x" → "x~" backup);
//   - a temp file renamed to a real name is uploaded under that name;
//   - anything else is a rename or move on the server.
func (d *Dir) Rename(ctx context.Context, name string, newParent gofs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	if d.fsys.opts.ReadOnly {
		return syscall.EROFS
	}
	if flags&unix.RENAME_EXCHANGE != 0 {
		return syscall.ENOTSUP
	}
	dst, ok := newParent.(*Dir)
	if !ok {
		return syscall.EROFS // into .versions
	}
	ctx, cancel := ctxTimeout(ctx)
	defer cancel()
	d.mu.Lock()
	defer d.mu.Unlock()
	if dst != d {
		dst.mu.Lock()
		defer dst.mu.Unlock()
	}
	path := d.path() + "/" + name
	src, err := d.child(ctx, name)
	if err != nil {
		return d.fsys.fail("rename", path, err)
	}
	if src == nil {
		return syscall.ENOENT
	}
	tgt, err := dst.child(ctx, newName)
	if err != nil {
		return d.fsys.fail("rename", path, err)
	}
	if tgt != nil && flags&unix.RENAME_NOREPLACE != 0 {
		return syscall.EEXIST
	}
	if tgt == src {
		return 0
	}
	var errno syscall.Errno
	switch op := src.Operations().(type) {
	case *Dir:
		errno = d.renameDir(ctx, op, name, dst, newName, tgt)
	case *File:
		errno = d.renameFile(ctx, op, name, dst, newName, tgt)
	default:
		errno = syscall.EROFS
	}
	if errno == 0 {
		d.touch()
		if dst != d {
			dst.touch()
		}
	}
	return errno
}

func (d *Dir) renameDir(ctx context.Context, src *Dir, name string, dst *Dir, newName string, tgt *gofs.Inode) syscall.Errno {
	path := d.path() + "/" + name
	if dst.doc != nil {
		return syscall.EPERM
	}
	if tgt != nil {
		t, ok := tgt.Operations().(*Dir)
		if !ok {
			return syscall.ENOTDIR
		}
		if errno := t.removeFromServer(ctx); errno != 0 {
			return errno
		}
		delete(dst.entries, newName)
	}
	src.amu.Lock()
	ref := &docRef{id: src.id, token: src.node.Token}
	src.amu.Unlock()
	if src.doc != nil {
		ref = src.doc
	}
	n, err := retryConflict(ctx, d.fsys.repo, ref, func(tok string) (remote.Node, error) {
		return d.fsys.repo.Rename(ctx, src.id, tok, dst.id, Unescape(newName))
	})
	if err != nil {
		return d.fsys.fail("rename", path, err)
	}
	if src.doc != nil {
		src.doc.setToken(n.Token)
	}
	src.amu.Lock()
	src.node = n
	src.amu.Unlock()
	delete(d.entries, name)
	dst.entries[newName] = n
	return 0
}

func (d *Dir) renameFile(ctx context.Context, src *File, name string, dst *Dir, newName string, tgt *gofs.Inode) syscall.Errno {
	path := d.path() + "/" + name
	fail := func(err error) syscall.Errno { return d.fsys.fail("rename", path, err) }

	// What the target was: a document (or file of one) to replace, or a
	// local file to drop.
	var tf *File
	var target identity
	replace := false
	if tgt != nil {
		var ok bool
		if tf, ok = tgt.Operations().(*File); !ok {
			return syscall.EISDIR
		}
		tf.mu.Lock()
		if tf.onServer() {
			target, replace = identity{tf.doc, tf.rf, tf.multi}, true
		} else if tf.shadowDir != nil {
			// Overwriting a moved-aside document deletes it.
			if err := tf.deleteRemote(ctx); err != nil {
				tf.mu.Unlock()
				return fail(err)
			}
			delete(tf.shadowDir.hidden, tf.shadowName)
			delete(tf.shadowDir.entries, tf.shadowName)
		}
		tf.mu.Unlock()
	}
	dstTemp := dst.isTemp(ctx, newName)
	if !replace && !dstTemp {
		if sh := dst.hidden[newName]; sh != nil && sh != src {
			// A temp file renamed to the name of a moved-aside document
			// becomes that document's next version.
			id, err := dst.takeShadow(ctx, sh)
			if err != nil {
				return fail(err)
			}
			delete(dst.hidden, newName)
			target, replace = id, true
		}
	}

	src.mu.Lock()
	fromEntries := d.local[name] != src
	errno := d.moveFile(ctx, src, name, dst, newName, target, replace, dstTemp)
	src.mu.Unlock()
	if errno != 0 {
		return errno
	}
	if tf != nil {
		tf.mu.Lock()
		tf.forget()
		tf.mu.Unlock()
		delete(dst.local, newName)
	}
	if d.local[name] == src {
		delete(d.local, name)
	}
	if fromEntries && d.hidden[name] != src {
		delete(d.entries, name)
	}
	dst.local[newName] = src
	return 0
}

// moveFile does the server side of a file rename (src.mu and the dirs' mu
// held) and moves src to dst/newName.
func (d *Dir) moveFile(ctx context.Context, src *File, name string, dst *Dir, newName string,
	target identity, replace, dstTemp bool) syscall.Errno {
	path := d.path() + "/" + name
	fail := func(err error) syscall.Errno { return d.fsys.fail("rename", path, err) }
	multiDst := dst.doc != nil

	// A shadow going back to its own name is just shown again.
	if src.shadowDir == dst && src.shadowName == newName && !replace {
		delete(dst.hidden, newName)
		src.temp, src.shadowDir, src.shadowName = false, nil, ""
		src.dir, src.name = dst, newName
		return d.saveMoved(ctx, src)
	}
	if src.shadowDir != nil && (dstTemp && dst == src.shadowDir) && !replace {
		src.dir, src.name = dst, newName // still moved aside, under another temp name
		return 0
	}
	if src.shadowDir != nil { // the moved-aside document becomes a plain file again
		delete(src.shadowDir.hidden, src.shadowName)
		src.temp, src.shadowDir, src.shadowName = false, nil, ""
	}

	var old *identity // a server identity of src to delete after the move
	if src.onServer() {
		old = &identity{src.doc, src.rf, src.multi}
	}

	switch {
	case replace:
		if old != nil && old.doc == target.doc && old.rf.Name == target.rf.Name {
			old = nil
		}
		if err := src.ensureLocal(ctx, false); err != nil {
			return fail(err)
		}
		src.doc, src.rf, src.multi, src.exists = target.doc, target.rf, target.multi, true
		src.base = target.rf.ContentID
		src.temp, src.dirty = false, true
	case dstTemp && old != nil && dst == d:
		// Moved aside: the document stays on the server, hidden.
		src.temp, src.shadowDir, src.shadowName = true, d, name
		d.hidden[name] = src
		src.dir, src.name = dst, newName
		return 0
	case old != nil && !old.multi && !multiDst:
		// A document renamed or moved between folders.
		n, err := retryConflict(ctx, d.fsys.repo, src.doc, func(tok string) (remote.Node, error) {
			return d.fsys.repo.Rename(ctx, src.doc.id, tok, dst.id, Unescape(newName))
		})
		if err != nil {
			return fail(err)
		}
		src.doc.setToken(n.Token)
		if rf, ok := fileOf(n, Unescape(newName)); ok {
			if src.dirty {
				rf.ContentID, rf.Size = src.rf.ContentID, src.rf.Size
			}
			src.rf = rf
		}
		src.dir, src.name = dst, newName
		if src.dirty { // the pending upload now names the new file
			if err := src.commit(); err != nil {
				return fail(err)
			}
		}
		src.saveAttr()
		return 0
	case dstTemp && old == nil:
		// A new file renamed to a temp name is no longer to be uploaded.
		src.temp = true
		src.fsys.up.cancel(src)
		if src.journaled {
			src.fsys.spool.Forget(src.key)
			src.journaled = false
		}
		src.dir, src.name = dst, newName
		return 0
	default:
		// Into, out of or within a multi-file document, or a local file
		// becoming a real one: upload it at its new place.
		if err := src.ensureLocal(ctx, false); err != nil {
			return fail(err)
		}
		src.doc, src.exists, src.multi, src.rf = nil, false, multiDst, remote.File{Name: Unescape(newName)}
		if multiDst {
			src.doc = dst.doc
		}
		src.base = ""
		src.temp, src.dirty = false, true
	}
	src.dir, src.name = dst, newName
	if errno := d.saveMoved(ctx, src); errno != 0 {
		return errno
	}
	if old != nil {
		if err := deleteIdentity(ctx, d.fsys, *old); err != nil {
			return fail(err)
		}
	}
	return 0
}

// saveMoved uploads a file that a rename gave new content or a new place.
// It does so even while a write handle is open: the kernel releases
// handles asynchronously, so the writer has usually closed already. A failed
// upload stays queued: the rename already happened.
func (d *Dir) saveMoved(ctx context.Context, src *File) syscall.Errno {
	if !src.dirty {
		return 0
	}
	if err := src.save(ctx); err != nil {
		if errors.Is(err, remote.ErrUnavailable) || remote.Errno(err) == syscall.EIO {
			d.fsys.log.Warn("upload after rename failed; kept in the spool and retried", "path", src.path(), "err", err)
			return 0
		}
		return d.fsys.fail("rename", src.path(), err)
	}
	return 0
}

// deleteIdentity removes a document, or one file of a multi-file one.
func deleteIdentity(ctx context.Context, fsys *FS, id identity) error {
	tmp := &File{fsys: fsys, doc: id.doc, rf: id.rf, multi: id.multi, exists: true}
	return tmp.deleteRemote(ctx)
}
