package core

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dmsfs/dmsfs/cache"
	"github.com/dmsfs/dmsfs/fs/upload"
	"github.com/dmsfs/dmsfs/remote"
)

// File is a regular file: a single-file document, one file of a multi-file
// document, a new file not yet uploaded, or a local-only temp file.
//
// Its content is in one of two places: the repository (local == nil; reads
// go through the block cache) or a spool copy (local != nil), which is then
// the content. Invariants, with mu held:
//   - dirty ⇒ local != nil: changes exist only in the spool copy.
//   - busy ⇒ an upload, a download of the current content or a server
//     change of the file's identity is under way with mu released; the
//     spool copy's bytes and the identity do not change until it ends
//     (writers, truncates, saves and renames wait on cond).
//   - temp ⇒ never uploaded; gone ⇒ never uploaded again.
//   - journaled ⇒ the journal holds a record of key (the spool copy is
//     durable and will be uploaded by the next mount if not by this one).
type File struct {
	fsys *FS
	ino  uint64

	mu   sync.Mutex
	cond *sync.Cond // on mu: busy ended
	busy bool

	// dir and name are where the file is shown; dir.id is the folder a new
	// file is inserted into.
	dir  *Dir
	name string
	// doc is the document; nil for a single file not on the server yet.
	// For a file of a multi-file document it is the directory's docRef.
	doc   *docRef
	multi bool
	// exists: the document holds a file rf.Name (for single files: doc != nil).
	exists bool
	rf     remote.File
	// temp files stay local. A document moved aside to a temp name (vim's
	// "x" → "x~") is a temp file that still shows the document: its name
	// in shadowDir stays hidden, so that a new "x" replaces the document
	// instead of creating another, and deleting the temp file deletes it.
	temp       bool
	shadowDir  *Dir
	shadowName string
	// base is the content ID local changes started from, baseToken the
	// document's token when it held base. An upload sends baseToken, not
	// the newer token a listing may have brought since, so that a change
	// on the server under a local change is refused and looked at (a
	// conflict copy) instead of overwritten.
	base, baseToken string
	// local is the spool copy; while set it is the file's content.
	local     *os.File
	key       string
	localTemp bool // key lives in the temp area (not journaled)
	journaled bool
	size      int64
	// dirty: local differs from the repository and must be uploaded.
	dirty bool
	attr  localAttr
	// attrGen is fsys.attrGen when attr was read from the spool.
	attrGen uint64
	// opens and writers count open handles; gen counts content changes
	// that did not come through this file's writes, keptGen the gen the
	// kernel page cache holds.
	opens, writers int
	gen, keptGen   uint64
	// gone: unlinked or replaced by a rename; never uploaded again.
	gone bool
	// changed is fsys.seq when this mount last changed the file on the
	// server: a listing begun before that is older than the file's view.
	changed uint64
	// writeErr is a write that failed (ENOSPC, EIO): the local content is
	// incomplete, so the next close abandons it instead of uploading it.
	writeErr syscall.Errno
	// fields caches the repository's fields (see xattr.go) as of token
	// fieldsToken, read at fieldsAt; pendingFields are fields set before
	// the file was on the server, sent after its upload (nil clears).
	fields        map[string]string
	fieldsToken   string
	fieldsAt      time.Time
	pendingFields map[string]*string
	// mtimePending: an mtime set by a program waits for the upload to be
	// kept in the repository (mtime.go).
	mtimePending bool
	// meter counts the bytes of the upload under way, for progress; read
	// without mu.
	meter atomic.Pointer[upload.Meter]
	// url and typ are the document's web UI address and type, as listed.
	url, typ string
	// passthru counts the open handles the kernel reads from passFile, a
	// local copy of the content they opened (chooseIO); closed when the
	// last is released.
	passthru int
	passFile *os.File
	// unchecked is fsys.seq when the file was created on a cached listing
	// without asking the server whether the name is taken (write-back),
	// or when its insert failed with no word whether the server made the
	// document; its upload looks first (namesake). 0: nothing to look for.
	unchecked uint64
	// truncated: an open's O_TRUNC changed the content and no save ran
	// since; the last writer's release saves it even while the upload
	// queue holds the file (Handle.trunc, Release).
	truncated bool
	// strays are the contents of inserts under the file's present name
	// that failed with no word whether the server made the document;
	// checked (stray.go) once the file leaves the name before an upload
	// settled it.
	strays []stray
}

var _ Node = (*File)(nil)
var _ upload.Item = (*File)(nil)

func newFile(fsys *FS, dir *Dir, name string) *File {
	f := &File{fsys: fsys, ino: fsys.nextIno(), dir: dir, name: name, keptGen: ^uint64(0)}
	f.cond = sync.NewCond(&f.mu)
	return f
}

// newRemoteFile shows file rf of document doc.
func newRemoteFile(fsys *FS, dir *Dir, name string, doc *docRef, rf remote.File, multi bool, n remote.Node) *File {
	f := newFile(fsys, dir, name)
	f.doc, f.rf, f.multi, f.exists = doc, rf, multi, true
	f.url, f.typ = n.URL, n.Type
	fields := n.Fields
	f.attrGen = fsys.attrGen.Load()
	if a, ok := fsys.spool.GetAttr(fsys.attrKey(doc.id, rf.Name)); ok && a.ContentID == rf.ContentID {
		f.attr = attrFrom(a)
	}
	if !multi {
		f.listedFields(fields, doc.getToken())
	}
	return f
}

// listedFields takes the fields a listing brought along (where the
// repository lists them): the mtime kept there, and the fields xattrs
// show, without asking again (mu held or the file new).
func (f *File) listedFields(fields map[string]string, token string) {
	if !f.fsys.caps.ListsFields {
		return
	}
	f.takeKeptMtime(fields)
	if fields == nil {
		fields = map[string]string{}
	}
	f.fields, f.fieldsToken, f.fieldsAt = fields, token, f.fsys.now()
}

// Ino is the file's inode number.
func (f *File) Ino() uint64 { return f.ino }

// path is the file's path in the mount, for messages (mu held).
func (f *File) path() string {
	if f.dir == nil {
		return f.name
	}
	return join(f.dir.Path(), f.name)
}

// Path is the file's path in the mount.
func (f *File) Path() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.path()
}

// acquire waits until no other operation is under way and starts one (mu
// held; mu is released while waiting).
func (f *File) acquire() {
	for f.busy {
		f.cond.Wait()
	}
	f.busy = true
}

// done ends the operation acquire started (mu held).
func (f *File) done() {
	f.busy = false
	f.cond.Broadcast()
}

// idle waits until no operation is under way (mu held).
func (f *File) idle() {
	for f.busy {
		f.cond.Wait()
	}
}

// onServer tells whether the repository holds this file (mu held).
func (f *File) onServer() bool { return f.doc != nil && f.exists && !f.temp }

// shows tells whether the file shows file fileName of document id (mu held).
func (f *File) shows(id remote.ID, fileName string, multi bool) bool {
	return f.doc != nil && f.doc.id == id && f.exists && f.multi == multi && (!multi || f.rf.Name == fileName)
}

// refresh takes the server's view of the file from a listing begun at
// sequence number since (mu held). Local changes keep their base; a clean
// copy follows the server.
func (f *File) refresh(n remote.Node, since uint64) {
	rf, token, fields := n.Files[0], n.Token, n.Fields
	f.url, f.typ = n.URL, n.Type
	if f.busy || f.changed >= since {
		return // an upload under way or newer than the listing knows better
	}
	if f.doc != nil {
		f.doc.setToken(token)
	}
	if f.dirty || f.temp || (f.opens > 0 && f.local != nil) {
		return // local changes, or open handles reading the local copy, keep their view
	}
	if g := f.fsys.attrGen.Load(); rf.ContentID != f.rf.ContentID || g != f.attrGen {
		// New content, or a chmod, chown or touch of some document
		// through another of its paths (a search folder's result).
		if rf.ContentID != f.rf.ContentID {
			f.gen++
			f.closeLocal()
			f.fsys.edits.changed(f.doc.id)
		}
		f.attr, f.attrGen = localAttr{}, g
		if a, ok := f.fsys.spool.GetAttr(f.fsys.attrKey(f.doc.id, rf.Name)); ok && a.ContentID == rf.ContentID {
			f.attr = attrFrom(a)
		}
	}
	f.rf = rf
	if !f.multi {
		f.listedFields(fields, token)
	}
}

// Attr is what stat shows.
func (f *File) Attr() Attr {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.attrLocked()
}

func (f *File) attrLocked() Attr {
	size, mtime := f.rf.Size, f.rf.ModTime
	if f.local != nil {
		size = f.size
	}
	a := Attr{Mode: syscall.S_IFREG, Size: size, Nlink: 1}
	if f.gone {
		a.Nlink = 0 // unlinked but still open
	}
	f.attr.fill(&a, 0o644, mtime, f.fsys.opts.UID, f.fsys.opts.GID)
	return a
}

// contentKey names the remote content in the block cache (mu held).
func (f *File) contentKey() string {
	return string(f.doc.id) + "/" + f.rf.Name + "@" + f.rf.ContentID
}

// opener opens the file's current content as one stream from an offset
// (mu held): from the pinned copy where there is one, else from the
// repository. A stream that comes up short (the content changed) ends, and
// readers fetch block by block (fetcher), which finds older contents.
func (f *File) opener() cache.OpenFunc {
	repo, id, rf := f.fsys.repo, f.doc.id, f.rf
	pinned, edits, at := f.fsys.pinnedContent, &f.fsys.edits, f.fsys.edits.now()
	return func(ctx context.Context, off int64) (io.ReadCloser, error) {
		if fh := pinned(rf.ContentID); fh != nil {
			return struct {
				io.Reader
				io.Closer
			}{io.NewSectionReader(fh, off, rf.Size-off), fh}, nil
		}
		rc, err := repo.Open(ctx, id, rf.Name, off, rf.Size-off)
		if err == nil && edits.since(id, at) {
			// The document changed since this view of it: the stream
			// may be of other content (see edits); the readers fetch
			// block by block, which checks.
			rc.Close()
			return nil, fmt.Errorf("%s changed since the read began: %w", rf.Name, cache.ErrShortRead)
		}
		return rc, err
	}
}

func (f *File) fetcher() cache.FetchFunc {
	repo, id, rf := f.fsys.repo, f.doc.id, f.rf
	current := fetchWith(func(ctx context.Context, off, n int64) (io.ReadCloser, error) {
		return repo.Open(ctx, id, rf.Name, off, n)
	})
	var once sync.Once // guards version and found
	var version int
	var found bool
	pinned, edits, at := f.fsys.pinnedContent, &f.fsys.edits, f.fsys.edits.now()
	return func(ctx context.Context, off, n int64) ([]byte, error) {
		if fh := pinned(rf.ContentID); fh != nil {
			// Kept on disk (dmsfs pin): no request, and it reads offline.
			buf := make([]byte, max(min(n, rf.Size-off), 0))
			k, err := fh.ReadAt(buf, off)
			fh.Close()
			if k == len(buf) && (err == nil || errors.Is(err, io.EOF)) {
				return buf, nil
			}
		}
		data, err := current(ctx, off, n)
		changed := err == nil && edits.since(id, at)
		if err != nil || !changed && int64(len(data)) == min(n, rf.Size-off) {
			return data, err
		}
		// The document got new content after this file's view of it was
		// taken (a handle opened before a save by rename): read the
		// version that holds the content the handle shows, if the
		// repository keeps one; otherwise the cache reports the mismatch.
		// It is looked up once for a read and its read-ahead, not per block.
		once.Do(func() { version, found = versionWith(ctx, repo, id, rf) })
		if v := version; found {
			return fetchWith(func(ctx context.Context, off, n int64) (io.ReadCloser, error) {
				return repo.OpenVersion(ctx, id, v, rf.Name, off, n)
			})(ctx, off, n)
		}
		if changed {
			// Some content of the document, maybe not this view's: the
			// reader gets it, the cache does not keep it.
			return data, cache.ErrUnverified
		}
		return data, nil
	}
}

// versionWith finds the version of doc whose file rf.Name has rf's content.
func versionWith(ctx context.Context, repo remote.Repository, doc remote.ID, rf remote.File) (int, bool) {
	if rf.ContentID == "" {
		return 0, false
	}
	vs, err := repo.Versions(ctx, doc)
	if err != nil {
		return 0, false
	}
	for _, v := range vs {
		for _, vf := range v.Files {
			if vf.Name == rf.Name && vf.ContentID == rf.ContentID && vf.Size == rf.Size {
				return v.N, true
			}
		}
	}
	return 0, false
}

// fetchWith makes a block fetcher from a ranged open.
func fetchWith(open func(ctx context.Context, off, n int64) (io.ReadCloser, error)) cache.FetchFunc {
	return func(ctx context.Context, off, n int64) ([]byte, error) {
		rc, err := open(ctx, off, n)
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		buf := make([]byte, n)
		got, err := io.ReadFull(rc, buf)
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return buf[:got], nil
		}
		return buf, err
	}
}

// ensureLocal gives the file a spool copy to change (mu held, no operation
// under way). Unless truncate is set the copy starts as the current
// content, which is downloaded with mu released (the file is busy then).
func (f *File) ensureLocal(ctx context.Context, truncate bool) error {
	if f.local != nil {
		return nil
	}
	temp := f.temp
	key, fh, err := f.fsys.spool.Create(temp)
	if err != nil {
		return err
	}
	size := int64(0)
	if !truncate && f.doc != nil && f.exists {
		doc, rf, fetch := f.doc.id, f.rf, f.fetcher()
		if err := f.fsys.meter.reserve(rf.Size); err != nil {
			fh.Close()
			f.fsys.spool.Remove(key, temp, false)
			return fmt.Errorf("no room in the spool for a copy of %d bytes: %w", rf.Size, err)
		}
		f.acquire()
		f.mu.Unlock()
		size, err = download(ctx, fetch, rf.Size, fh)
		f.mu.Lock()
		f.done()
		if err != nil {
			fh.Close()
			f.fsys.spool.Remove(key, temp, false)
			return fmt.Errorf("fetch current content: %w", err)
		}
		if f.local != nil || f.rf.ContentID != rf.ContentID || f.doc == nil || f.doc.id != doc {
			// Something else gave the file content meanwhile: keep that.
			fh.Close()
			f.fsys.spool.Remove(key, temp, false)
			return nil
		}
	}
	f.local, f.key, f.localTemp, f.size = fh, key, temp, size
	f.setBase(f.rf.ContentID)
	return nil
}

// download copies size bytes of content through fetch, which reads the
// version the file shows even when the document has newer content (a
// file replaced or unlinked while a handle keeps it open).
func download(ctx context.Context, fetch cache.FetchFunc, size int64, w io.Writer) (int64, error) {
	const chunk = 4 << 20
	var n int64
	for n < size {
		b, err := fetch(ctx, n, min(chunk, size-n))
		if errors.Is(err, cache.ErrUnverified) {
			// The document's current bytes, which a local copy started
			// from before this check too; the upload sends the base
			// token, so a change under it is still found there.
			err = nil
		}
		if err != nil {
			return n, err
		}
		if len(b) == 0 {
			break
		}
		if _, err := w.Write(b); err != nil {
			return n, err
		}
		n += int64(len(b))
	}
	if n != size {
		return n, fmt.Errorf("downloaded %d bytes, expected %d: %w", n, size, cache.ErrShortRead)
	}
	return n, nil
}

// closeLocal drops the spool copy (mu held); only for a clean copy or one
// whose changes are abandoned.
func (f *File) closeLocal() {
	if f.local == nil {
		return
	}
	f.local.Close()
	if f.key != "" { // "" after forget: already removed
		f.fsys.spool.Remove(f.key, f.localTemp, f.journaled)
	}
	f.local, f.key, f.journaled = nil, "", false
}

// maybeDropLocal frees the spool copy once it is clean and unused (mu held).
func (f *File) maybeDropLocal() {
	if f.local != nil && !f.busy && f.opens == 0 && (f.gone || (!f.dirty && !f.temp && f.exists)) {
		f.closeLocal()
	}
}

func (f *File) setMtimeNow() { f.attr.mtime = f.fsys.now() }

// abandon drops local changes after a failed write (mu held): the
// repository's content stays what the file shows; a new file becomes empty
// and is not uploaded until it is written again.
func (f *File) abandon(ctx context.Context) {
	f.closeLocal()
	f.dirty, f.writeErr = false, 0
	f.gen++
	f.fsys.queue.Cancel(f)
	if f.doc != nil && f.exists {
		f.size = f.rf.Size
		return
	}
	f.size = 0
	_ = f.ensureLocal(ctx, true)
}

// record describes the pending upload of the file (mu held).
func (f *File) record() cache.Record {
	rec := cache.Record{Key: f.key, Size: f.size, Path: f.path(), Queued: f.fsys.now(),
		Mtime: f.attr.mtime, Mode: f.attr.mode, Name: Unescape(f.name), Base: f.base}
	switch {
	case f.doc == nil:
		rec.Op, rec.Parent = cache.OpInsert, f.dir.id
	case f.exists:
		rec.Op, rec.Doc, rec.Name = cache.OpReplace, f.doc.id, f.rf.Name
		if !f.multi {
			rec.Parent = f.dir.id // where to keep it if the document was deleted
		}
	default:
		rec.Op, rec.Doc = cache.OpAppend, f.doc.id
	}
	if f.doc != nil {
		rec.Token = f.doc.getToken()
		if f.base != "" && f.baseToken != "" {
			rec.Token = f.baseToken
		}
	}
	return rec
}

// setBase notes that local changes start from content id, which the
// document holds at its current token (mu held).
func (f *File) setBase(id string) {
	f.base, f.baseToken = id, ""
	if f.doc != nil && id != "" {
		f.baseToken = f.doc.getToken()
	}
}

// commit makes local changes durable in the spool with a journal record
// (mu held, no operation under way).
func (f *File) commit() error {
	if !f.dirty || f.temp || f.gone || f.local == nil {
		return nil
	}
	if f.localTemp { // a temp file renamed to a real name
		if err := f.fsys.spool.Adopt(f.key); err != nil {
			return err
		}
		f.localTemp = false
	}
	if err := f.fsys.spool.Commit(f.local, f.record()); err != nil {
		return err
	}
	f.journaled = true
	return nil
}

// save uploads now, or with write-back commits to the journal and queues
// the upload (mu held). A synchronous save journals only when the upload
// failed: until it returns nothing was promised, and afterwards the server
// has it.
func (f *File) save(ctx context.Context) error {
	f.idle()
	f.truncated = false
	if !f.dirty || f.temp || f.gone {
		return nil
	}
	if f.fsys.opts.WriteBack > 0 {
		if err := f.commit(); err != nil {
			return err
		}
		f.fsys.queue.Schedule(f, f.path(), f.size, f.fsys.opts.WriteBack)
		return nil
	}
	err := f.upload(ctx)
	if err == nil {
		return nil
	}
	if !f.dirty || f.gone {
		return err
	}
	if cerr := f.commit(); cerr != nil {
		return errors.Join(err, cerr)
	}
	f.fsys.queue.Failed(f, f.path(), f.size, err)
	if errors.Is(err, remote.ErrUnavailable) {
		// Is the repository gone, or did one call fail? Offline, the save
		// is accepted into the spool: it uploads when the repository is
		// back, as with write-back.
		f.acquire()
		f.mu.Unlock()
		f.fsys.probe()
		f.mu.Lock()
		f.done()
		if !f.fsys.Offline().IsZero() {
			f.fsys.log.Info("offline: saved in the spool; uploads when the repository answers", "path", f.path(), "bytes", f.size)
			return nil
		}
	}
	return err
}

// Sent is how far the upload under way got (upload.Progresser; no lock).
func (f *File) Sent() int64 {
	if m := f.meter.Load(); m != nil {
		return m.Sent()
	}
	return 0
}

// stage starts sending the local content ahead, read through m, where
// the repository can (remote.Stager), and returns what waits for it: the
// staged bytes, or nil (then the save sends them itself). mu held and
// the file busy.
func (f *File) stage(ctx context.Context, m *upload.Meter) func() remote.Staged {
	st, ok := remote.As[remote.Stager](f.fsys.repo)
	if !ok || !f.fsys.Offline().IsZero() {
		return func() remote.Staged { return nil }
	}
	c := remote.Content{ReaderAt: m, Size: f.size}
	name, path := Unescape(f.name), f.path()
	done := make(chan remote.Staged, 1)
	go func() {
		s, err := st.Stage(ctx, name, c)
		if err != nil {
			f.fsys.log.Debug("sending the content ahead failed; the save sends it", "path", path, "err", err)
		}
		done <- s
	}()
	return func() remote.Staged { return <-done }
}

// Upload is the upload queue's call: it sends the local changes. While
// a descriptor has writes no flush saved yet, the local copy is no save:
// that flush saves (and queues the file again if it fails). A retry used
// to send such a half-written copy as a version of its own (the
// reference model with lost answers).
func (f *File) Upload(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.idle()
	if f.writing() {
		return nil
	}
	f.truncated = false // sent now
	return f.upload(ctx)
}

// writing tells whether an open descriptor of the file wrote since its
// last flush (mu held).
func (f *File) writing() bool {
	f.fsys.handlesMu.Lock()
	defer f.fsys.handlesMu.Unlock()
	for h := range f.fsys.handles {
		if h.f == f && h.wrote {
			return true
		}
	}
	return false
}

// upload sends the local content to the repository (mu held, no operation
// under way; mu is released while the upload runs) and takes the server's
// new state. A conflicting change on the server makes the local content a
// conflict copy, and the file shows the server's content again.
func (f *File) upload(ctx context.Context) error {
	if !f.dirty || f.temp || f.gone || f.local == nil {
		return nil
	}
	f.acquire()
	m := upload.NewMeter(f.local, f.size)
	f.meter.Store(m)
	f.fsys.queue.Begin(f, f.path(), f.size)
	end := func() {
		f.fsys.queue.End(f)
		f.meter.Store(nil)
		f.done()
	}
	var staged remote.Staged
	contested := false // the document a lost create made was changed since
	defer func() {
		if staged != nil {
			// Nothing if a save took it; else two requests, not waited for.
			go staged.Discard(context.WithoutCancel(ctx))
		}
	}()
	if f.doc == nil && f.unchecked != 0 {
		// Created on a cached listing: a document another client made
		// under the name since then gets this content as its next version
		// (as a create that had asked would have found it) instead of a
		// second document of the name beside it. Where the repository can
		// take the bytes before knowing which document they go into, they
		// travel while the listing is fetched (writes wait: busy).
		seq, dir, name := f.unchecked, f.dir, f.name
		strays := slices.Clone(f.strays)
		stage := f.stage(ctx, m)
		f.mu.Unlock()
		n, found, err := dir.namesake(ctx, name, seq)
		if err == nil && found && len(strays) > 0 {
			contested, err = changedSince(ctx, f.fsys.sender, n, strays)
		}
		staged = stage()
		f.mu.Lock()
		if err != nil {
			end()
			return err
		}
		f.unchecked = 0
		if found && f.doc == nil && !f.gone {
			f.takeOver(n)
			if !contested {
				f.fsys.log.Info("another client created a document of this name meanwhile: the new file becomes its next version", "path", f.path())
			}
		}
	}
	req := upload.Request{Rec: f.record(), Data: m, Staged: staged, Contested: contested}
	if f.exists {
		req.Current = f.rf
	}
	f.mu.Unlock()
	res, err := f.fsys.sender.Send(ctx, req)
	f.mu.Lock()
	end()
	if err != nil {
		if req.Rec.Op == cache.OpInsert && f.doc == nil && !remote.Permanent(err) {
			// The server may have made the document, its answer lost:
			// the retry looks for it first (namesake), as after a create
			// on a cached listing, instead of making a second one.
			f.unchecked = f.fsys.seq.Add(1)
			f.noteStray()
		}
		return err
	}
	// The document under this name is the file's now (found or made):
	// no insert of it can be left over.
	f.strays = nil
	if f.gone {
		return nil // forget waits for uploads; nothing else ends a file
	}
	f.changed = f.fsys.seq.Add(1)
	if !res.Unchanged {
		f.fsys.changes.Add(1)
	}
	if res.Conflict != "" {
		f.fsys.conflicts.Add(1)
		f.gen++
		f.dirty = false
		f.closeLocal()
		f.dir.stale.Store(true)
	}
	if !res.Unchanged {
		if res.Node.ID == "" { // the document is gone (conflict copy made elsewhere)
			f.gone = true
			return nil
		}
		if f.doc == nil || !f.multi && f.doc.id != res.Node.ID {
			// A new document, or the content went to a new one because
			// the old was deleted on the server.
			f.doc = newDocRef(res.Node)
		}
		f.doc.setToken(res.Node.Token)
		if rf, ok := fileOf(res.Node, res.File); ok {
			f.rf, f.exists = rf, true
		}
		if !f.multi {
			f.url, f.typ = res.Node.URL, res.Node.Type
		}
	}
	f.setBase(f.rf.ContentID)
	if res.Conflict == "" {
		f.dirty = false
		// Saved: a queued upload of it (a retry, a mknod's wait for
		// content) has nothing left to send.
		f.fsys.queue.Cancel(f)
		if a := f.attrRecord(); a != nil || f.journaled {
			_ = f.fsys.spool.Finish(f.key, f.fsys.attrKey(f.doc.id, f.rf.Name), a)
		}
		f.journaled = false
	}
	f.maybeDropLocal()
	if !res.Unchanged && res.Conflict == "" && f.doc != nil {
		f.showElsewhere(ctx)
	}
	if len(f.pendingFields) > 0 && f.onServer() && res.Conflict == "" {
		f.sendPendingFields(ctx)
	}
	if f.mtimePending && res.Conflict == "" {
		f.sendMtime(ctx)
	}
	return nil
}

// showElsewhere lists again the other folders that show the file's
// document (search folders: search.go), so that they show its change (mu
// held; released meanwhile, the file busy).
func (f *File) showElsewhere(ctx context.Context) {
	if f.fsys.searches.Load() == 0 {
		return
	}
	doc, dir := f.doc.id, f.dir
	f.acquire()
	f.mu.Unlock()
	f.fsys.otherViews(ctx, doc, dir)
	f.mu.Lock()
	f.done()
}

// fileOf finds the uploaded file in the node the repository returned.
func fileOf(n remote.Node, name string) (remote.File, bool) {
	if rf, ok := n.File(name); ok {
		return rf, true
	}
	if len(n.Files) == 1 {
		return n.Files[0], true
	}
	return remote.File{}, false
}

// attrRecord is what is stored of the local attributes for the current
// server content; nil when none are set.
func (f *File) attrRecord() *cache.Attr {
	a := f.attr
	if a.mode == 0 && !a.mtimeSet && !a.owner {
		return nil // a write time needs no keeping: the server's is as good
	}
	r := a.record(f.rf.ContentID)
	return &r
}

// saveAttr keeps the local attributes for the current server content.
func (f *File) saveAttr() {
	if !f.onServer() || f.dirty {
		return
	}
	key := f.fsys.attrKey(f.doc.id, f.rf.Name)
	if a := f.attrRecord(); a != nil {
		_ = f.fsys.spool.SetAttr(key, *a)
	} else {
		f.fsys.spool.DeleteAttr(key)
	}
	f.attrGen = f.fsys.attrGen.Add(1)
}

// forget abandons the file after an unlink or a rename over it (mu held):
// it waits for an upload under way, drops the pending one; open handles
// keep reading and writing the local copy.
func (f *File) forget(ctx context.Context) {
	f.idle()
	if f.opens > 0 && f.local == nil && f.onServer() {
		// Open handles keep the content, as on a local disk, after the
		// document is gone; a copy is taken while it is still there.
		if err := f.ensureLocal(ctx, false); err != nil {
			f.fsys.log.Warn("no local copy of an unlinked file that is still open; reading it may fail", "path", f.path(), "err", err)
		}
	}
	f.gone = true
	f.dirty = false
	f.fsys.queue.Cancel(f)
	f.leaveName()
	if f.local != nil {
		f.fsys.spool.Remove(f.key, f.localTemp, f.journaled) // the open descriptor stays usable
		f.key, f.journaled = "", false
	}
	if f.opens == 0 && f.local != nil {
		f.local.Close()
		f.local = nil
	}
}

// identity is where a file lives on the server.
type identity struct {
	doc   *docRef
	rf    remote.File
	multi bool
}

// identity returns the file's server identity, if it has one (mu held).
func (f *File) identity() (identity, bool) {
	return identity{f.doc, f.rf, f.multi}, f.doc != nil && f.exists
}

// deleteIdentity removes a document, or one file of a multi-file one.
func (fsys *FS) deleteIdentity(ctx context.Context, id identity) error {
	if id.multi {
		n, err := retryConflict(ctx, fsys.repo, id.doc, func(tok string) (remote.Node, error) {
			return fsys.repo.DeleteFile(ctx, id.doc.id, tok, id.rf.Name)
		})
		if errors.Is(err, remote.ErrUnsupported) {
			// The last file: the document goes with it.
			_, err = retryConflict(ctx, fsys.repo, id.doc, func(tok string) (remote.Node, error) {
				return remote.Node{}, fsys.repo.Delete(ctx, id.doc.id, tok)
			})
		}
		if err == nil && n.Token != "" {
			id.doc.setToken(n.Token)
		}
		return ignoreNotFound(err)
	}
	_, err := retryConflict(ctx, fsys.repo, id.doc, func(tok string) (remote.Node, error) {
		return remote.Node{}, fsys.repo.Delete(ctx, id.doc.id, tok)
	})
	fsys.spool.DeleteAttr(fsys.attrKey(id.doc.id, id.rf.Name))
	return ignoreNotFound(err)
}

func ignoreNotFound(err error) error {
	if errors.Is(err, remote.ErrNotFound) {
		return nil
	}
	return err
}

// retryConflict runs op with the document's token and, if the token was
// stale, once more with a fresh one. It suits operations whose outcome does
// not depend on the content the caller saw: delete, rename, metadata.
func retryConflict(ctx context.Context, repo remote.Repository, doc *docRef, op func(token string) (remote.Node, error)) (remote.Node, error) {
	n, err := op(doc.getToken())
	if !errors.Is(err, remote.ErrConflict) {
		return n, err
	}
	cur, serr := repo.Stat(ctx, doc.id)
	if errors.Is(serr, remote.ErrNotFound) {
		// Gone: Axelor answers a stale version for a record deleted
		// meanwhile too.
		return n, serr
	}
	if serr != nil {
		return n, err
	}
	doc.setToken(cur.Token)
	return op(cur.Token)
}

// materialize turns a shadow into a plain local temp file with its own
// copy (mu held), before the document it showed gets new content.
func (f *File) materialize(ctx context.Context) error {
	f.idle()
	if err := f.ensureLocal(ctx, false); err != nil {
		return err
	}
	f.doc, f.exists, f.shadowDir, f.shadowName = nil, false, nil, ""
	f.dirty = false
	return nil
}
