package fs

import (
	"context"
	"hash/fnv"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/dmsfs/dmsfs/cache"
	"github.com/dmsfs/dmsfs/remote"
	"github.com/dmsfs/dmsfs/versions"
)

// Dir is a folder, or a document with several files (doc != nil).
type Dir struct {
	gofs.Inode
	fsys *FS
	id   remote.ID
	doc  *docRef
	// stale forces the next listing to ask the server (set where a Dir
	// lock may not be taken).
	stale atomic.Bool

	// amu is a leaf lock guarding node and attr.
	amu  sync.Mutex
	node remote.Node
	attr localAttr

	// mu guards the fields below.
	mu sync.Mutex
	// entries is the last listing: mount name → child node. In a document
	// directory each entry is a one-file node per file.
	entries map[string]remote.Node
	listed  int64 // fsys.now() of the listing, in ns
	// local holds files shown here that the listing does not (yet) show:
	// temp files, files not uploaded yet, files renamed here. It overlays
	// entries.
	local map[string]*File
	// hidden are listed names moved aside to a temp name; see File.shadowDir.
	hidden map[string]*File
	gone   bool
	// kernelList is a hash of the listing the kernel may hold in its
	// readdir cache; 0 when it holds none. See OpendirHandle.
	kernelList uint64
}

func newDir(fsys *FS, n remote.Node, doc *docRef) *Dir {
	d := &Dir{fsys: fsys, id: n.ID, doc: doc, node: n, local: map[string]*File{}, hidden: map[string]*File{}}
	if a, ok := fsys.spool.GetAttr("d/" + string(n.ID)); ok {
		d.attr = attrFrom(a)
	}
	return d
}

func (d *Dir) path() string { return "/" + d.Path(nil) }

func (d *Dir) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	d.fillAttr(&out.Attr)
	return 0
}

func (d *Dir) fillAttr(out *fuse.Attr) {
	d.amu.Lock()
	defer d.amu.Unlock()
	mode := uint32(0o755)
	if d.attr.mode != 0 {
		mode = d.attr.mode & 0o7777
	}
	mtime := d.node.ModTime
	if !d.attr.mtime.IsZero() {
		mtime = d.attr.mtime
	}
	out.Mode = syscall.S_IFDIR | mode
	out.Nlink = 2
	out.Size = 4096
	out.SetTimes(nil, &mtime, &mtime)
	out.Uid, out.Gid = d.fsys.opts.UID, d.fsys.opts.GID
	if d.attr.owner {
		out.Uid, out.Gid = d.attr.uid, d.attr.gid
	}
}

func (d *Dir) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if d.fsys.opts.ReadOnly {
		return syscall.EROFS
	}
	d.amu.Lock()
	setLocalAttr(&d.attr, in, d.fsys)
	a := d.attr
	d.amu.Unlock()
	d.fsys.spool.SetAttr("d/"+string(d.id), cache.Attr{Mode: a.mode, UID: a.uid, GID: a.gid, HasOwner: a.owner, Mtime: a.mtime})
	d.fillAttr(&out.Attr)
	return 0
}

// setLocalAttr applies the mode, owner and time parts of a setattr.
func setLocalAttr(a *localAttr, in *fuse.SetAttrIn, fsys *FS) {
	if m, ok := in.GetMode(); ok {
		a.mode = m & 0o7777
	}
	uid, uok := in.GetUID()
	gid, gok := in.GetGID()
	if uok || gok {
		if !a.owner {
			a.uid, a.gid = fsys.opts.UID, fsys.opts.GID
		}
		if uok {
			a.uid = uid
		}
		if gok {
			a.gid = gid
		}
		a.owner = true
	}
	if t, ok := in.GetMTime(); ok {
		a.mtime, a.mtimeSet = t, true
	}
}

// touch records a change of the directory's entries.
func (d *Dir) touch() {
	d.amu.Lock()
	defer d.amu.Unlock()
	if !d.attr.mtime.IsZero() {
		d.attr.mtime = d.fsys.now()
		a := d.attr
		d.fsys.spool.SetAttr("d/"+string(d.id), cache.Attr{Mode: a.mode, UID: a.uid, GID: a.gid, HasOwner: a.owner, Mtime: a.mtime})
	}
}

// refresh lists the directory again when the listing is older than
// DirCacheTime (mu held).
func (d *Dir) refresh(ctx context.Context) error {
	now := d.fsys.now().UnixNano()
	if d.entries != nil && !d.stale.Load() && now-d.listed < int64(d.fsys.opts.DirCacheTime) {
		return nil
	}
	if d.gone {
		d.entries = map[string]remote.Node{}
		return nil
	}
	var entries map[string]remote.Node
	if d.doc != nil {
		n, err := d.fsys.repo.Stat(ctx, d.id)
		if err != nil {
			return err
		}
		d.doc.setToken(n.Token)
		d.amu.Lock()
		d.node = n
		d.amu.Unlock()
		entries = make(map[string]remote.Node, len(n.Files))
		for _, f := range n.Files {
			entries[Escape(f.Name)] = remote.Node{ID: n.ID, Parent: n.Parent, Kind: remote.KindDocument,
				Name: f.Name, Token: n.Token, ModTime: f.ModTime, Files: []remote.File{f}}
		}
	} else {
		nodes, err := d.fsys.repo.List(ctx, d.id)
		if err != nil {
			return err
		}
		entries = MountNames(nodes)
	}
	d.entries, d.listed = entries, now
	d.stale.Store(false)
	for name, f := range d.local {
		n, ok := entries[name]
		if !ok || n.IsDir() && d.doc == nil {
			continue
		}
		f.mu.Lock()
		same := f.shows(n.ID, n.Files[0].Name, d.doc != nil) && !f.temp
		f.mu.Unlock()
		if same {
			delete(d.local, name) // the listing shows it now
		}
	}
	for name, n := range entries {
		if _, overlaid := d.local[name]; !overlaid {
			d.update(name, n)
		}
	}
	return nil
}

// update gives a live child the server's newer state (mu held).
func (d *Dir) update(name string, n remote.Node) {
	ch := d.GetChild(name)
	if ch == nil {
		return
	}
	switch op := ch.Operations().(type) {
	case *File:
		if n.IsDir() && d.doc == nil {
			return
		}
		op.mu.Lock()
		if op.shows(n.ID, n.Files[0].Name, d.doc != nil) && !op.temp {
			op.refresh(n.Files[0], n.Token)
		}
		op.mu.Unlock()
	case *Dir:
		if op.id == n.ID {
			op.amu.Lock()
			op.node = n
			op.amu.Unlock()
			if op.doc != nil {
				op.doc.setToken(n.Token)
			}
		}
	}
}

// childFor returns the inode showing node n under name, reusing a live one
// (mu held).
func (d *Dir) childFor(ctx context.Context, name string, n remote.Node) *gofs.Inode {
	multi := d.doc != nil
	if ch := d.GetChild(name); ch != nil {
		switch op := ch.Operations().(type) {
		case *File:
			if !n.IsDir() || multi {
				op.mu.Lock()
				ok := op.shows(n.ID, n.Files[0].Name, multi) && !op.temp
				op.mu.Unlock()
				if ok {
					return ch
				}
			}
		case *Dir:
			if n.IsDir() && !multi && op.id == n.ID {
				return ch
			}
		}
	}
	switch {
	case multi:
		f := newRemoteFile(d.fsys, d, name, d.doc, n.Files[0], true)
		return d.NewInode(ctx, f, gofs.StableAttr{Mode: syscall.S_IFREG})
	case n.IsDir():
		var doc *docRef
		if n.Kind == remote.KindDocument {
			doc = newDocRef(n)
		}
		return d.NewInode(ctx, newDir(d.fsys, n, doc), gofs.StableAttr{Mode: syscall.S_IFDIR})
	default:
		f := newRemoteFile(d.fsys, d, name, newDocRef(n), n.Files[0], false)
		return d.NewInode(ctx, f, gofs.StableAttr{Mode: syscall.S_IFREG})
	}
}

// isTemp tells whether a file of this name stays local (mu held).
func (d *Dir) isTemp(ctx context.Context, name string) bool {
	return d.fsys.temps.IsTempBeside(name, func(target string) bool {
		ch, err := d.child(ctx, target)
		return err == nil && ch != nil
	})
}

// child finds the inode shown under name (mu held); nil if there is none.
func (d *Dir) child(ctx context.Context, name string) (*gofs.Inode, error) {
	if f, ok := d.local[name]; ok {
		return f.EmbeddedInode(), nil
	}
	if d.hidden[name] != nil {
		return nil, nil
	}
	if err := d.refresh(ctx); err != nil {
		return nil, err
	}
	n, ok := d.entries[name]
	if !ok {
		return nil, nil
	}
	return d.childFor(ctx, name, n), nil
}

func fillEntry(ch *gofs.Inode, out *fuse.EntryOut) {
	switch op := ch.Operations().(type) {
	case *File:
		op.fillAttr(&out.Attr)
	case *Dir:
		op.fillAttr(&out.Attr)
	case *versionsNode:
		op.fillAttr(&out.Attr)
	}
}

func (d *Dir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if name == versions.Dir && d.fsys.caps.Versions {
		ch := d.versionsInode(ctx)
		fillEntry(ch, out)
		return ch, 0
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	ch, err := d.child(ctx, name)
	if err != nil {
		return nil, d.fsys.fail("lookup", d.path()+"/"+name, err)
	}
	if ch == nil {
		return nil, syscall.ENOENT
	}
	fillEntry(ch, out)
	return ch, 0
}

func (d *Dir) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	d.mu.Lock()
	defer d.mu.Unlock()
	list, errno := d.listing(ctx)
	if errno != 0 {
		return nil, errno
	}
	return gofs.NewListDirStream(list), 0
}

// OpendirHandle lets the kernel keep the listing in its page cache
// (FOPEN_CACHE_DIR) while it is unchanged, so that a warm ls -lR or rsync
// asks the daemon nothing. The kernel drops its copy itself after changes
// made through it; a listing that changed otherwise (on the server, or by
// an upload finishing) is given without the flags once, which makes the
// kernel drop the stale copy, and cached again from the next open.
func (d *Dir) OpendirHandle(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	d.mu.Lock()
	defer d.mu.Unlock()
	list, errno := d.listing(ctx)
	if errno != 0 {
		return nil, 0, errno
	}
	h := fnv.New64a()
	for _, e := range list {
		h.Write([]byte(e.Name))
		h.Write([]byte{0, byte(e.Mode >> 12)})
	}
	sum := h.Sum64() | 1 // never 0, which means the kernel holds nothing
	var open uint32
	if d.kernelList == 0 || d.kernelList == sum {
		open = fuse.FOPEN_CACHE_DIR | fuse.FOPEN_KEEP_CACHE
		d.kernelList = sum
	} else {
		d.kernelList = 0
	}
	return gofs.NewListDirStream(list).(gofs.FileHandle), open, 0
}

// listing is what readdir shows, sorted (mu held).
func (d *Dir) listing(ctx context.Context) ([]fuse.DirEntry, syscall.Errno) {
	if err := d.refresh(ctx); err != nil {
		return nil, d.fsys.fail("readdir", d.path(), err)
	}
	modes := make(map[string]uint32, len(d.entries)+len(d.local)+1)
	for name, n := range d.entries {
		if d.hidden[name] != nil {
			continue
		}
		if n.IsDir() && d.doc == nil {
			modes[name] = syscall.S_IFDIR
		} else {
			modes[name] = syscall.S_IFREG
		}
	}
	for name := range d.local {
		modes[name] = syscall.S_IFREG
	}
	if d.fsys.opts.ShowVersions && d.fsys.caps.Versions {
		modes[versions.Dir] = syscall.S_IFDIR
	}
	list := make([]fuse.DirEntry, 0, len(modes))
	for name, mode := range modes {
		list = append(list, fuse.DirEntry{Name: name, Mode: mode})
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	return list, 0
}

func (d *Dir) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if d.fsys.opts.ReadOnly {
		return nil, syscall.EROFS
	}
	if d.doc != nil || name == versions.Dir {
		return nil, syscall.EPERM // documents hold files, not folders
	}
	ctx, cancel := ctxTimeout(ctx)
	defer cancel()
	d.mu.Lock()
	defer d.mu.Unlock()
	if ch, err := d.child(ctx, name); err != nil || ch != nil {
		if err != nil {
			return nil, d.fsys.fail("mkdir", d.path()+"/"+name, err)
		}
		return nil, syscall.EEXIST
	}
	n, err := d.fsys.repo.Mkdir(ctx, d.id, Unescape(name))
	if err != nil {
		return nil, d.fsys.fail("mkdir", d.path()+"/"+name, err)
	}
	d.entries[name] = n
	sub := newDir(d.fsys, n, nil)
	if mode&0o7777 != 0o755 {
		sub.attr.mode = mode & 0o7777
	}
	ch := d.NewInode(ctx, sub, gofs.StableAttr{Mode: syscall.S_IFDIR})
	sub.fillAttr(&out.Attr)
	d.touch()
	return ch, 0
}

func (d *Dir) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	if d.fsys.opts.ReadOnly {
		return nil, nil, 0, syscall.EROFS
	}
	if name == versions.Dir {
		return nil, nil, 0, syscall.EPERM
	}
	ctx, cancel := ctxTimeout(ctx)
	defer cancel()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.gone {
		return nil, nil, 0, syscall.ENOENT
	}
	if ch, err := d.child(ctx, name); err != nil || ch != nil {
		if err != nil {
			return nil, nil, 0, d.fsys.fail("create", d.path()+"/"+name, err)
		}
		return nil, nil, 0, syscall.EEXIST
	}
	f := newFile(d.fsys, d, name)
	f.temp = d.isTemp(ctx, name)
	d.amu.Lock()
	noDocs := d.node.NoDocuments
	d.amu.Unlock()
	if noDocs && !f.temp {
		return nil, nil, 0, syscall.EACCES
	}
	if d.doc != nil {
		f.doc, f.multi = d.doc, true
	}
	if sh := d.hidden[name]; sh != nil && !f.temp {
		// A new file where a document was moved aside (vim's save): it
		// becomes the document's next version.
		id, err := d.takeShadow(ctx, sh)
		if err != nil {
			return nil, nil, 0, d.fsys.fail("create", d.path()+"/"+name, err)
		}
		f.doc, f.rf, f.exists, f.multi = id.doc, id.rf, true, id.multi
		delete(d.hidden, name)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.ensureLocal(ctx, true); err != nil {
		return nil, nil, 0, d.fsys.fail("create", d.path()+"/"+name, err)
	}
	if f.exists {
		f.base = f.rf.ContentID
	}
	f.dirty = true // even an empty new file becomes a document
	if mode&0o7777 != 0o644 {
		f.attr.mode = mode & 0o7777
	}
	f.setMtimeNow()
	d.local[name] = f
	ch := d.NewInode(ctx, f, gofs.StableAttr{Mode: syscall.S_IFREG})
	f.fillAttrLocked(&out.Attr)
	h := f.openLocked(flags)
	d.touch()
	return ch, h, 0, 0
}

// identity is where a file lives on the server.
type identity struct {
	doc   *docRef
	rf    remote.File
	multi bool
}

// takeShadow detaches a moved-aside document from its temp-named shadow,
// which keeps a copy of the old content, and returns the document (mu held).
func (d *Dir) takeShadow(ctx context.Context, sh *File) (identity, error) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	id := identity{sh.doc, sh.rf, sh.multi}
	if err := sh.materialize(ctx); err != nil {
		return identity{}, err
	}
	return id, nil
}

// existingChild finds the child an unlink or rmdir removes (mu held).
func (d *Dir) existingChild(ctx context.Context, op, name string) (*gofs.Inode, syscall.Errno) {
	if d.fsys.opts.ReadOnly {
		return nil, syscall.EROFS
	}
	ch, err := d.child(ctx, name)
	if err != nil {
		return nil, d.fsys.fail(op, d.path()+"/"+name, err)
	}
	if ch == nil {
		return nil, syscall.ENOENT
	}
	return ch, 0
}

func (d *Dir) Unlink(ctx context.Context, name string) syscall.Errno {
	ctx, cancel := ctxTimeout(ctx)
	defer cancel()
	d.mu.Lock()
	defer d.mu.Unlock()
	ch, errno := d.existingChild(ctx, "unlink", name)
	if errno != 0 {
		return errno
	}
	f, ok := ch.Operations().(*File)
	if !ok {
		return syscall.EISDIR
	}
	var err error
	f.mu.Lock()
	shadowName := f.shadowName
	if f.shadowDir != nil || f.onServer() {
		err = f.deleteRemote(ctx)
	}
	if err == nil {
		f.forget()
	}
	f.mu.Unlock()
	if err != nil {
		return d.fsys.fail("unlink", d.path()+"/"+name, err)
	}
	if shadowName != "" {
		delete(d.hidden, shadowName)
		delete(d.entries, shadowName)
	}
	delete(d.local, name)
	delete(d.entries, name)
	if d.doc != nil && len(d.entries) == 0 && len(d.local) == 0 {
		d.gone = true // the last file took the document with it
	}
	d.touch()
	return 0
}

func (d *Dir) Rmdir(ctx context.Context, name string) syscall.Errno {
	ctx, cancel := ctxTimeout(ctx)
	defer cancel()
	d.mu.Lock()
	defer d.mu.Unlock()
	ch, errno := d.existingChild(ctx, "rmdir", name)
	if errno != 0 {
		return errno
	}
	sub, ok := ch.Operations().(*Dir)
	if !ok {
		return syscall.ENOTDIR
	}
	if errno := sub.removeFromServer(ctx); errno != 0 {
		return errno
	}
	delete(d.entries, name)
	d.touch()
	return 0
}

// removeFromServer deletes an empty directory (its own mu is taken).
func (d *Dir) removeFromServer(ctx context.Context) syscall.Errno {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.gone {
		return 0
	}
	if len(d.local) > 0 {
		return syscall.ENOTEMPTY
	}
	if d.doc != nil {
		// A document directory goes when its last file is unlinked.
		n, err := d.fsys.repo.Stat(ctx, d.id)
		if err == nil && len(n.Files) > 0 {
			return syscall.ENOTEMPTY
		}
		d.gone = true
		return 0
	}
	kids, err := d.fsys.repo.List(ctx, d.id)
	if err != nil {
		return d.fsys.fail("rmdir", d.path(), err)
	}
	if len(kids) > 0 {
		return syscall.ENOTEMPTY
	}
	d.amu.Lock()
	ref := &docRef{id: d.id, token: d.node.Token}
	d.amu.Unlock()
	_, err = retryConflict(ctx, d.fsys.repo, ref, func(tok string) (remote.Node, error) {
		return remote.Node{}, d.fsys.repo.Delete(ctx, d.id, tok)
	})
	if err = ignoreNotFound(err); err != nil {
		return d.fsys.fail("rmdir", d.path(), err)
	}
	d.gone = true
	d.fsys.spool.DeleteAttr("d/" + string(d.id))
	return 0
}

func (d *Dir) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	// The spool's disk bounds what can be written before it is uploaded.
	var st syscall.Statfs_t
	if err := syscall.Statfs(d.fsys.spool.Dir(), &st); err != nil {
		return gofs.ToErrno(err)
	}
	out.FromStatfsT(&st)
	out.NameLen = 255
	return 0
}
