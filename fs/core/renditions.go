package core

import (
	"context"
	"errors"
	"io"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/dmsfs/dmsfs/remote"
)

// RenditionsDir is the name of a directory's renditions view.
const RenditionsDir = ".renditions"

// Renditions is one level of the read-only .renditions tree, where a
// repository converts documents (remote.Renditioner):
//
//	dir/.renditions/               level 0: a directory per document of dir that converts
//	dir/.renditions/<doc>/         level 1: its renditions
//	dir/.renditions/<doc>/<name>   level 2: one rendition
//
// A rendition's size is not known until it was fetched, which the
// repository does whole when it is opened: until then it shows size 0,
// which the kernel keeps for no time. An open whose size the kernel
// may not have (the first, the first after a save) is direct I/O: the
// kernel reads to the end whatever size it holds. Each open fetches for
// the document's token as of then, so a save shows in the next open.
type Renditions struct {
	fsys  *FS
	ino   uint64
	level int
	dir   *Dir   // the directory the view is in
	doc   string // levels 1 and 2: the document's name in dir
	r     remote.Rendition

	mu    sync.Mutex             // guards the fields below
	kids  map[string]*Renditions // levels 0 and 1, by name
	token string                 // level 2: the token last opened
	size  int64                  // level 2: its size; -1 until fetched
	mtime time.Time              // levels 1 and 2: the document's; else dir's
}

var _ View = (*Renditions)(nil)

// renditionsNode is dir's .renditions; nil where the repository converts
// nothing.
func (d *Dir) renditionsNode() *Renditions {
	if _, ok := remote.As[remote.Renditioner](d.fsys.repo); !ok || d.doc != nil || d.search != nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.renditions == nil {
		d.renditions = &Renditions{fsys: d.fsys, ino: d.fsys.nextIno(), dir: d}
	}
	return d.renditions
}

// Ino is the node's inode number.
func (v *Renditions) Ino() uint64 { return v.ino }

// IsDir tells the directories from the renditions.
func (v *Renditions) IsDir() bool { return v.level < 2 }

// Attr is what stat shows: read-only directories and files.
func (v *Renditions) Attr() Attr {
	a := Attr{UID: v.fsys.opts.UID, GID: v.fsys.opts.GID, Nlink: 1}
	v.mu.Lock()
	defer v.mu.Unlock()
	a.Mtime = v.mtime
	if a.Mtime.IsZero() {
		a.Mtime = v.dir.Attr().Mtime
	}
	if v.level < 2 {
		a.Mode, a.Size = syscall.S_IFDIR|0o555, 4096
		return a
	}
	// Until fetched the size is 0 and the kernel asks again at each stat.
	a.Mode, a.Size, a.Uncached = syscall.S_IFREG|0o444, max(v.size, 0), v.size < 0
	return a
}

// document is the document shown as name in dir, with the newest token
// this mount knows; ENOENT if it is no document on the server.
func (v *Renditions) document(ctx context.Context, name string) (remote.Node, error) {
	d := v.dir
	ch, err := d.child(ctx, name)
	if err != nil {
		return remote.Node{}, v.fsys.fail("lookup", join(d.Path(), RenditionsDir+"/"+name), err)
	}
	d.mu.Lock()
	n, listed := d.entries[name]
	d.mu.Unlock()
	var ref *docRef
	switch x := ch.(type) {
	case *File:
		x.mu.Lock()
		if x.doc != nil && x.exists && !x.multi {
			ref = x.doc
			n.Files = []remote.File{x.rf} // the file as this mount last saved it
		}
		x.mu.Unlock()
	case *Dir:
		ref = x.doc
	}
	if ref == nil || !listed {
		return remote.Node{}, syscall.ENOENT // a folder, or not on the server yet
	}
	n.ID, n.Token = ref.id, ref.getToken()
	return n, nil
}

// renditions lists what the document named name converts to.
func (v *Renditions) renditions(ctx context.Context, name string) (remote.Node, []remote.Rendition, error) {
	n, err := v.document(ctx, name)
	if err != nil {
		return n, nil, err
	}
	conv, _ := remote.As[remote.Renditioner](v.fsys.repo)
	rs, err := conv.Renditions(ctx, n)
	if err != nil {
		return n, nil, v.fsys.fail("renditions", join(v.dir.Path(), name), err)
	}
	return n, rs, nil
}

// Readdir lists the level.
func (v *Renditions) Readdir(ctx context.Context) ([]DirEntry, error) {
	var list []DirEntry
	switch v.level {
	case 0:
		d := v.dir
		if err := d.refresh(ctx); err != nil {
			return nil, v.fsys.fail("readdir", join(d.Path(), RenditionsDir), err)
		}
		d.mu.Lock()
		var names []string
		for name, n := range d.entries {
			if n.Kind == remote.KindDocument && d.hidden[name] == nil && d.unlinked[name] == nil {
				names = append(names, name)
			}
		}
		d.mu.Unlock()
		for _, name := range names {
			if _, rs, err := v.renditions(ctx, name); err == nil && len(rs) > 0 {
				list = append(list, DirEntry{Name: name, Dir: true})
			}
		}
	case 1:
		_, rs, err := v.renditions(ctx, v.doc)
		if err != nil {
			return nil, err
		}
		for _, r := range rs {
			list = append(list, DirEntry{Name: r.Name})
		}
	default:
		return nil, syscall.ENOTDIR
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	return list, nil
}

// Lookup finds name in the level.
func (v *Renditions) Lookup(ctx context.Context, name string) (View, error) {
	if v.level > 1 {
		return nil, syscall.ENOTDIR
	}
	doc := name
	if v.level == 1 {
		doc = v.doc
	}
	n, rs, err := v.renditions(ctx, doc)
	if err != nil {
		return nil, err
	}
	var kid *Renditions
	switch {
	case v.level == 0 && len(rs) > 0:
		kid = v.kid(name, func() *Renditions { return &Renditions{level: 1, doc: name} })
	case v.level == 1:
		for _, r := range rs {
			if r.Name == name {
				kid = v.kid(name, func() *Renditions { return &Renditions{level: 2, doc: doc, r: r, size: -1} })
			}
		}
	}
	if kid == nil {
		return nil, syscall.ENOENT
	}
	kid.mu.Lock()
	kid.mtime = n.ModTime
	kid.mu.Unlock()
	return kid, nil
}

func (v *Renditions) kid(name string, make func() *Renditions) *Renditions {
	return keepKid(&v.mu, &v.kids, name, func() *Renditions {
		k := make()
		k.fsys, k.dir, k.ino = v.fsys, v.dir, v.fsys.nextIno()
		return k
	})
}

// Open fetches the rendition for the document's token as of now (the
// repository converts it whole; programs such as pdfinfo take the size
// from fstat after the open, so it must be right by then).
func (v *Renditions) Open(ctx context.Context) (ViewReader, ViewOpen, error) {
	if v.level < 2 {
		return nil, ViewOpen{}, syscall.EISDIR
	}
	n, err := v.document(ctx, v.doc)
	if err != nil {
		return nil, ViewOpen{}, err
	}
	h := &renditionReader{v: v, doc: n.ID, token: n.Token}
	rc, size, err := h.open(ctx, 0)
	if err != nil {
		return nil, ViewOpen{}, err
	}
	rc.Close()
	v.mu.Lock()
	// The kernel may hold another size (0 before the first fetch, the
	// last version's after a save): it then reads through to the end.
	stale := v.token != n.Token || v.size != size
	v.token, v.size = n.Token, size
	v.mu.Unlock()
	return h, ViewOpen{Direct: stale}, nil
}

// renditionReader reads one rendition as of one token.
type renditionReader struct {
	v     *Renditions
	doc   remote.ID
	token string
}

func (h *renditionReader) open(ctx context.Context, off int64) (io.ReadCloser, int64, error) {
	v := h.v
	conv, _ := remote.As[remote.Renditioner](v.fsys.repo)
	rc, size, err := conv.OpenRendition(ctx, h.doc, h.token, v.r.Kind, off)
	if err != nil {
		return nil, 0, v.fsys.fail("read", join(v.dir.Path(), RenditionsDir+"/"+v.doc+"/"+v.r.Name), err)
	}
	return rc, size, nil
}

func (h *renditionReader) Read(ctx context.Context, dest []byte, off int64) ([]byte, error) {
	rc, _, err := h.open(ctx, off)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	n, err := io.ReadFull(rc, dest)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, h.v.fsys.fail("read", join(h.v.dir.Path(), RenditionsDir+"/"+h.v.doc+"/"+h.v.r.Name), err)
	}
	return dest[:n], nil
}
