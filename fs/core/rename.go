package core

import (
	"context"
	"errors"
	"syscall"

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
func (d *Dir) Rename(ctx context.Context, name string, dst *Dir, newName string, flags uint32) error {
	if d.fsys.opts.ReadOnly || !d.searchRenameAllowed(ctx, name, dst, newName) {
		return syscall.EROFS
	}
	if flags&unix.RENAME_EXCHANGE != 0 {
		return syscall.ENOTSUP
	}
	if newName == "." || newName == ".." || name == "." || name == ".." {
		return syscall.EINVAL
	}
	ctx, cancel := opContext(ctx)
	defer cancel()
	unlock := lockDirs(d, dst)
	defer unlock()
	p := join(d.Path(), name)
	src, err := d.child(ctx, name)
	if err != nil {
		return d.fsys.fail("rename", p, err)
	}
	if src == nil {
		return syscall.ENOENT
	}
	tgt, err := dst.child(ctx, newName)
	if err != nil {
		return d.fsys.fail("rename", p, err)
	}
	if tgt != nil && flags&unix.RENAME_NOREPLACE != 0 {
		return syscall.EEXIST
	}
	if tgt == src {
		return nil
	}
	switch op := src.(type) {
	case *Dir:
		err = d.renameDir(ctx, op, name, dst, newName, tgt)
	case *File:
		err = d.renameFile(ctx, op, name, dst, newName, tgt)
	default:
		err = syscall.EROFS
	}
	if err == nil {
		d.touch()
		if dst != d {
			dst.touch()
		}
	}
	return err
}

// searchRenameAllowed: in search views only a temp file renames, within
// its query's directory, to another temp name or over a result (a save).
func (d *Dir) searchRenameAllowed(ctx context.Context, name string, dst *Dir, newName string) bool {
	if d.search == nil && dst.search == nil {
		return true
	}
	if d != dst || !d.searchLocal(name) {
		return false
	}
	if d.searchTemp(ctx, newName) {
		return true
	}
	tgt, err := d.child(ctx, newName)
	return err == nil && tgt != nil
}

func (d *Dir) renameDir(ctx context.Context, src *Dir, name string, dst *Dir, newName string, tgt Node) error {
	p := join(d.Path(), name)
	if dst.doc != nil {
		return syscall.EPERM
	}
	for x := dst; x != nil; x = x.parentDir() {
		if x == src {
			return syscall.EINVAL // into itself
		}
	}
	if tgt != nil {
		t, ok := tgt.(*Dir)
		if !ok {
			return syscall.ENOTDIR
		}
		if err := t.removeFromServer(ctx); err != nil {
			return err
		}
		dst.drop(newName)
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
		return d.fsys.fail("rename", p, err)
	}
	if src.doc != nil {
		src.doc.setToken(n.Token)
	}
	src.amu.Lock()
	src.node = n
	src.amu.Unlock()
	src.setPlace(dst, newName)
	d.drop(name)
	dst.mu.Lock()
	if dst.entries != nil {
		dst.entries[newName] = n
	}
	dst.kids[newName] = src
	dst.changed()
	dst.mu.Unlock()
	return nil
}

func (d *Dir) parentDir() *Dir {
	d.fsys.treeMu.RLock()
	defer d.fsys.treeMu.RUnlock()
	return d.parent
}

func (d *Dir) renameFile(ctx context.Context, src *File, name string, dst *Dir, newName string, tgt Node) error {
	p := join(d.Path(), name)
	fail := func(err error) error { return d.fsys.fail("rename", p, err) }
	src.settle(ctx)
	if tf, ok := tgt.(*File); ok {
		tf.settle(ctx)
	}

	// What the target was: a document (or file of one) to replace, or a
	// local file to drop.
	var tf *File
	var target identity
	replace := false
	if tgt != nil {
		var ok bool
		if tf, ok = tgt.(*File); !ok {
			return syscall.EISDIR
		}
		tf.mu.Lock()
		tf.idle()
		if tf.onServer() {
			target, replace = identity{tf.doc, tf.rf, tf.multi}, true
		} else if tf.shadowDir != nil {
			// Overwriting a moved-aside document deletes it.
			id, _ := tf.identity()
			sd, sn := tf.shadowDir, tf.shadowName
			tf.mu.Unlock()
			if err := d.fsys.deleteIdentity(ctx, id); err != nil {
				return fail(err)
			}
			sd.mu.Lock()
			delete(sd.hidden, sn)
			sd.mu.Unlock()
			sd.drop(sn)
			tf.mu.Lock()
		}
		tf.mu.Unlock()
	}
	dstTemp := dst.isTemp(ctx, newName)
	if !replace && !dstTemp {
		dst.mu.Lock()
		sh := dst.hidden[newName]
		dst.mu.Unlock()
		if sh != src {
			// A temp file renamed to the name of a moved-aside document
			// (or one unlinked a moment ago) becomes its next version.
			id, ok, err := dst.takeBack(ctx, newName)
			if err != nil {
				return fail(err)
			}
			if ok {
				target, replace = id, true
			}
		}
	}

	d.mu.Lock()
	fromLocal := d.local[name] == src
	d.mu.Unlock()
	src.mu.Lock()
	after, err := d.moveFile(ctx, src, name, dst, newName, target, replace, dstTemp)
	if err == nil {
		src.leaveName() // the name left may hold a document a lost create made
	}
	src.mu.Unlock()
	if err != nil {
		return err
	}
	d.mu.Lock()
	movedAside := d.hidden[name] == src // its listed name stays, hidden
	d.mu.Unlock()
	if tf != nil {
		tf.mu.Lock()
		lost := len(tf.strays) > 0
		tf.strays = nil // not to delete: src takes the name, and the document
		tf.forget(ctx)
		tf.mu.Unlock()
		if lost {
			// The target's create lost its answer: the document it may
			// have made under the name is src's to take over (namesake).
			src.mu.Lock()
			if src.doc == nil && src.unchecked == 0 {
				src.unchecked = d.fsys.seq.Add(1)
			}
			src.mu.Unlock()
		}
	}
	d.mu.Lock()
	if fromLocal {
		delete(d.local, name)
	}
	if !movedAside && d.entries != nil {
		// The listed document under the old name is src's, or one src
		// took over: it is not there any more.
		delete(d.entries, name)
	}
	if d.kids[name] == src {
		delete(d.kids, name)
	}
	d.changed()
	d.mu.Unlock()
	dst.mu.Lock()
	delete(dst.kids, newName)
	dst.local[newName] = src
	dst.changed()
	dst.mu.Unlock()
	return after(ctx)
}

// moveFile does the state change of a file rename (src.mu held; the
// directories' nsMu held) and returns what is left to do with no lock but
// the nsMu: the upload of a file given new content or a new place, and
// the deletion of the document it was before.
func (d *Dir) moveFile(ctx context.Context, src *File, name string, dst *Dir, newName string,
	target identity, replace, dstTemp bool) (func(context.Context) error, error) {
	p := join(d.Path(), name)
	fail := func(err error) error { return d.fsys.fail("rename", p, err) }
	nothing := func(context.Context) error { return nil }
	multiDst := dst.doc != nil
	src.idle()

	// A shadow going back to its own name is just shown again.
	if src.shadowDir == dst && src.shadowName == newName && !replace {
		dst.mu.Lock()
		delete(dst.hidden, newName)
		dst.mu.Unlock()
		src.temp, src.shadowDir, src.shadowName = false, nil, ""
		src.dir, src.name = dst, newName
		return d.saveMoved(src), nil
	}
	if src.shadowDir != nil && (dstTemp && dst == src.shadowDir) && !replace {
		src.dir, src.name = dst, newName // still moved aside, under another temp name
		return nothing, nil
	}
	if sd := src.shadowDir; sd != nil { // the moved-aside document becomes a plain file again
		sd.mu.Lock()
		delete(sd.hidden, src.shadowName)
		sd.mu.Unlock()
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
			return nil, fail(err)
		}
		src.doc, src.rf, src.multi, src.exists = target.doc, target.rf, target.multi, true
		src.setBase(target.rf.ContentID)
		src.temp, src.dirty = false, true
	case dstTemp && old != nil && dst == d:
		// Moved aside: the document stays on the server, hidden.
		src.temp, src.shadowDir, src.shadowName = true, d, name
		d.mu.Lock()
		d.hidden[name] = src
		d.mu.Unlock()
		src.dir, src.name = dst, newName
		return nothing, nil
	case old != nil && !old.multi && !multiDst:
		// A document renamed or moved between folders.
		doc := src.doc
		src.acquire()
		src.mu.Unlock()
		n, err := retryConflict(ctx, d.fsys.repo, doc, func(tok string) (remote.Node, error) {
			return d.fsys.repo.Rename(ctx, doc.id, tok, dst.id, Unescape(newName))
		})
		src.mu.Lock()
		src.done()
		if err != nil {
			return nil, fail(err)
		}
		doc.setToken(n.Token)
		if rf, ok := fileOf(n, Unescape(newName)); ok {
			if rf.ContentID == src.base {
				src.baseToken = n.Token // our rename changed the token, not the content
			}
			if src.dirty {
				rf.ContentID, rf.Size = src.rf.ContentID, src.rf.Size
			}
			src.rf = rf
		}
		src.dir, src.name = dst, newName
		if src.dirty { // the pending upload now names the new file
			if err := src.commit(); err != nil {
				return nil, fail(err)
			}
		}
		src.saveAttr()
		return nothing, nil
	case dstTemp && old == nil:
		// A new file renamed to a temp name is no longer to be uploaded.
		src.temp = true
		src.fsys.queue.Cancel(src)
		if src.journaled {
			_ = src.fsys.spool.Forget(src.key)
			src.journaled = false
		}
		src.dir, src.name = dst, newName
		return nothing, nil
	default:
		// Into, out of or within a multi-file document, or a local file
		// becoming a real one: upload it at its new place.
		if err := src.ensureLocal(ctx, false); err != nil {
			return nil, fail(err)
		}
		src.doc, src.exists, src.multi, src.rf = nil, false, multiDst, remote.File{Name: Unescape(newName)}
		if multiDst {
			src.doc = dst.doc
		}
		src.setBase("")
		src.temp, src.dirty = false, true
	}
	src.dir, src.name = dst, newName
	save := d.saveMoved(src)
	return func(ctx context.Context) error {
		if err := save(ctx); err != nil {
			return err
		}
		if old != nil {
			if err := d.fsys.deleteIdentity(ctx, *old); err != nil {
				return fail(err)
			}
		}
		return nil
	}, nil
}

// saveMoved returns the upload of a file that a rename gave new content or
// a new place. It runs even while a write handle is open: the kernel
// releases handles asynchronously, so the writer has usually closed
// already. A failed upload stays queued: the rename already happened.
func (d *Dir) saveMoved(src *File) func(context.Context) error {
	return func(ctx context.Context) error {
		src.mu.Lock()
		defer src.mu.Unlock()
		if !src.dirty {
			return nil
		}
		if err := src.save(ctx); err != nil {
			if !ordinary(err) && !errors.Is(err, syscall.ENOSPC) {
				d.fsys.log.Warn("upload after rename failed; kept in the spool", "path", src.path(), "err", err)
				return nil
			}
			return d.fsys.fail("rename", src.path(), err)
		}
		return nil
	}
}
