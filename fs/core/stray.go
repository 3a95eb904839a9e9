package core

import (
	"context"
	"errors"
	"slices"

	"github.com/dmsfs/dmsfs/fs/upload"
	"github.com/dmsfs/dmsfs/remote"
)

// A create whose answer was lost (a cut connection) may have made the
// document on the server. The file's retry looks for it under its name
// (namesake) and takes it over. But a file can leave its name before the
// retry: rsync renames its temporary file to the real name, a program
// deletes a scratch file. The document the lost create made would then
// stay on the server, shown by no file of the mount. So a rename or an
// unlink of such a file first looks for that document (settle) and makes
// it the file's. When the server cannot tell then, the upload queue
// checks the name once the file has left it (strayItem) and deletes a
// document there that holds the very bytes the create sent; a document
// of other bytes is another client's, and stays.

// maxStrays bounds the contents kept per file (one per failed create).
const maxStrays = 8

// stray is the content of a create that failed with no word whether the
// server made the document.
type stray struct {
	dir  *Dir
	name string
	size int64
	sum  string // hex SHA-256
}

// noteStray records the content of the create that just failed (mu held;
// the file busy, so the local copy holds what was sent).
func (f *File) noteStray() {
	if f.local == nil {
		return
	}
	sum := upload.SHA256Hex(f.local, f.size)
	if sum == "" {
		return
	}
	f.strays = append(f.strays, stray{dir: f.dir, name: f.name, size: f.size, sum: sum})
	f.strays = f.strays[max(0, len(f.strays)-maxStrays):]
}

// leaveName has the names of the file's failed creates checked, now that
// the file left them (renamed, unlinked; mu held).
func (f *File) leaveName() {
	for _, s := range f.strays {
		it := &strayItem{stray: s, path: join(s.dir.Path(), s.name)}
		f.fsys.queue.Schedule(it, it.path, 0, 0)
	}
	f.strays = nil
}

// strayItem deletes the document a lost create left under a name its
// file has left, if the document holds the create's bytes.
type strayItem struct {
	stray
	path string
}

func (s *strayItem) Upload(ctx context.Context) error {
	d := s.dir
	// A namespace change: no file takes the name while the document
	// under it is checked and deleted (one that took it first takes the
	// document over, below).
	d.nsMu.Lock()
	defer d.nsMu.Unlock()
	d.mu.Lock()
	kids := []*File{d.local[s.name]}
	if k, ok := d.kids[s.name].(*File); ok {
		kids = append(kids, k)
	}
	d.mu.Unlock()
	var mine remote.ID // the document of a file of the name again
	for _, kid := range kids {
		if kid == nil {
			continue
		}
		// A file of the name again (the file that left the name may
		// still be listed there for a moment): without a document yet,
		// one there is its to take over (namesake), not to delete.
		kid.mu.Lock()
		again := !kid.gone && kid.dir == d && kid.name == s.name
		if again && kid.doc == nil && kid.unchecked == 0 {
			kid.unchecked = d.fsys.seq.Add(1)
		}
		if again && kid.doc != nil {
			mine = kid.doc.id
		}
		kid.mu.Unlock()
		if again && mine == "" {
			return nil
		}
	}
	entries, _, err := d.fetch(ctx)
	if err != nil {
		return s.failed(d, err)
	}
	n, ok := entries[s.name]
	if !ok || n.ID == mine || n.IsDir() || len(n.Files) != 1 || n.Files[0].Size != s.size {
		return nil
	}
	sum, err := d.fsys.sender.ServerSum(ctx, n.ID, n.Files[0])
	if err != nil {
		return s.failed(d, err)
	}
	if sum != s.sum {
		return nil // other bytes: another client's document
	}
	if err := d.fsys.deleteIdentity(ctx, identity{doc: newDocRef(n), rf: n.Files[0]}); err != nil {
		return s.failed(d, err)
	}
	d.fsys.log.Info("deleted the document a create whose answer was lost had made under a name its file has left", "path", s.path)
	d.mu.Lock()
	if d.entries != nil && d.entries[s.name].ID == n.ID {
		delete(d.entries, s.name)
		d.changed()
	}
	d.mu.Unlock()
	return nil
}

// failed is an error to retry later; a folder gone or a refusal for
// good ends the check (the queue would keep it as a refused upload).
func (s *strayItem) failed(d *Dir, err error) error {
	if errors.Is(err, remote.ErrNotFound) {
		return nil
	}
	if remote.Permanent(err) {
		d.fsys.log.Warn("could not check for a document a lost create may have left", "path", s.path, "err", err)
		return nil
	}
	return err
}

// settle finds out, before a rename or an unlink, whether a create of
// the file that lost its answer made its document after all: a document
// of its name with that create's bytes becomes the file's, so that the
// rename or unlink treats it as any other (moves it, saves into it,
// deletes it after the grace in which a new file of the name takes it
// back). When the server cannot tell now, the check after the file left
// the name covers it (no mu held).
func (f *File) settle(ctx context.Context) {
	f.mu.Lock()
	f.idle()
	if f.doc != nil || f.gone || len(f.strays) == 0 {
		f.mu.Unlock()
		return
	}
	dir, name, seq := f.dir, f.name, f.unchecked
	strays := slices.Clone(f.strays)
	f.acquire()
	f.mu.Unlock()
	n, found, err := dir.namesake(ctx, name, seq)
	changed := false
	if err == nil && found {
		changed, err = changedSince(ctx, f.fsys.sender, n, strays)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	defer f.done()
	if err != nil || f.doc != nil || f.gone || f.dir != dir || f.name != name {
		return
	}
	if !found {
		f.strays = nil // no document of the name: none was made
		return
	}
	if !changed {
		f.takeOver(n)
		f.strays, f.unchecked = nil, 0
	}
}

// takeOver makes n, a document of the file's name, the file's (mu held).
func (f *File) takeOver(n remote.Node) {
	f.doc, f.rf, f.exists = newDocRef(n), n.Files[0], true
	f.url, f.typ = n.URL, n.Type
	f.setBase(f.rf.ContentID)
}

// changedSince tells whether n, a document of the file's name found at
// its retry, holds none of the bytes the file's lost creates sent. It
// was then most likely made by one of them and changed by another
// client since, and the file's content goes beside it as a conflict
// copy. (It may also be a document another client made under the name
// while the create had failed for real; the conflict copy keeps both
// there too. Only its history could tell the two apart.)
func changedSince(ctx context.Context, sender *upload.Sender, n remote.Node, strays []stray) (bool, error) {
	sum, err := sender.ServerSum(ctx, n.ID, n.Files[0])
	if err != nil {
		return false, err
	}
	for _, s := range strays {
		if s.size == n.Files[0].Size && s.sum == sum {
			return false, nil
		}
	}
	return true, nil
}
