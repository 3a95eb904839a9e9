package core

import (
	"context"
	"fmt"
	"io"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/dmsfs/dmsfs/remote"
	"github.com/dmsfs/dmsfs/versions"
)

// Versions is one level of the read-only .versions tree:
//
//	dir/.versions/                   level 0: one directory per file in dir
//	dir/.versions/<name>/            level 1: one file per earlier version
//	dir/.versions/<name>/<version>   level 2: the old content
type Versions struct {
	fsys  *FS
	ino   uint64
	level int
	dir   *Dir // the directory the tree is in (levels 0 and 1)

	// levels 1 and 2: the document and file
	doc  remote.ID
	file string // the file's name in the document; "" for the only file

	mu      sync.Mutex // level 0 and 1: guards entries, listed, gen and kids
	entries []versions.Entry
	listed  time.Time
	gen     uint64               // fsys.changes when listed
	kids    map[string]*Versions // by name
	entry   versions.Entry       // level 2
}

var _ View = (*Versions)(nil)

func (d *Dir) versionsNode() *Versions {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.versions == nil {
		d.versions = &Versions{fsys: d.fsys, ino: d.fsys.nextIno(), dir: d}
	}
	return d.versions
}

// Ino is the node's inode number.
func (v *Versions) Ino() uint64 { return v.ino }

// IsDir tells the directories of the tree from the old versions.
func (v *Versions) IsDir() bool { return v.level < 2 }

// Attr is what stat shows: read-only directories and files.
func (v *Versions) Attr() Attr {
	a := Attr{UID: v.fsys.opts.UID, GID: v.fsys.opts.GID, Nlink: 1}
	if v.level < 2 {
		a.Mode, a.Size, a.Mtime = syscall.S_IFDIR|0o555, 4096, v.dir.Attr().Mtime
		return a
	}
	a.Mode, a.Size, a.Mtime = syscall.S_IFREG|0o444, v.entry.File.Size, v.entry.Time
	return a
}

// history returns the earlier versions of a level-1 node's file.
func (v *Versions) history(ctx context.Context) ([]versions.Entry, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	gen := v.fsys.changes.Load()
	if v.entries != nil && v.gen == gen && v.fsys.now().Sub(v.listed) < v.fsys.opts.DirCacheTime {
		return v.entries, nil
	}
	h, err := v.fsys.repo.Versions(ctx, v.doc)
	if err != nil {
		return nil, err
	}
	v.entries = versions.Earlier(h, v.file)
	if v.entries == nil {
		v.entries = []versions.Entry{}
	}
	v.listed, v.gen = v.fsys.now(), gen
	return v.entries, nil
}

// Readdir lists the level.
func (v *Versions) Readdir(ctx context.Context) ([]DirEntry, error) {
	var list []DirEntry
	switch v.level {
	case 0:
		d := v.dir
		err := d.refresh(ctx)
		d.mu.Lock()
		seen := map[string]bool{}
		for name, n := range d.entries {
			if (d.doc != nil || !n.IsDir()) && d.hidden[name] == nil && d.unlinked[name] == nil {
				seen[name] = true
			}
		}
		for name, f := range d.local { // files uploaded since the listing
			f.mu.Lock()
			if f.onServer() {
				seen[name] = true
			}
			f.mu.Unlock()
		}
		d.mu.Unlock()
		if err != nil {
			return nil, v.fsys.fail("readdir", join(d.Path(), versions.Dir), err)
		}
		for name := range seen {
			list = append(list, DirEntry{Name: name, Dir: true})
		}
	case 1:
		es, err := v.history(ctx)
		if err != nil {
			return nil, v.fsys.fail("versions", string(v.doc), err)
		}
		for _, e := range es {
			list = append(list, DirEntry{Name: e.Name})
		}
	default:
		return nil, syscall.ENOTDIR
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	return list, nil
}

// kid returns the node for name, keeping one per name.
func (v *Versions) kid(name string, make func() *Versions) *Versions {
	return keepKid(&v.mu, &v.kids, name, func() *Versions {
		k := make()
		k.ino = v.fsys.nextIno()
		return k
	})
}

// Lookup finds name in the level.
func (v *Versions) Lookup(ctx context.Context, name string) (View, error) {
	switch v.level {
	case 0:
		d := v.dir
		ch, err := d.child(ctx, name)
		if err != nil {
			return nil, v.fsys.fail("lookup", join(d.Path(), versions.Dir+"/"+name), err)
		}
		f, ok := ch.(*File)
		if !ok || f == nil {
			return nil, syscall.ENOENT
		}
		f.mu.Lock()
		doc, file, ok := remote.ID(""), f.rf.Name, f.doc != nil && f.exists
		if ok {
			doc = f.doc.id
		}
		if !f.multi {
			file = ""
		}
		f.mu.Unlock()
		if !ok {
			return nil, syscall.ENOENT // not on the server yet: no history
		}
		return v.kid(string(doc)+"/"+file, func() *Versions {
			return &Versions{fsys: v.fsys, level: 1, dir: d, doc: doc, file: file}
		}), nil
	case 1:
		es, err := v.history(ctx)
		if err != nil {
			return nil, v.fsys.fail("versions", string(v.doc), err)
		}
		for _, e := range es {
			if e.Name == name {
				return v.kid(name, func() *Versions {
					return &Versions{fsys: v.fsys, level: 2, doc: v.doc, file: v.file, entry: e}
				}), nil
			}
		}
	}
	return nil, syscall.ENOENT
}

// Open opens an old version, which never changes.
func (v *Versions) Open(ctx context.Context) (ViewReader, ViewOpen, error) {
	if v.level != 2 {
		return nil, ViewOpen{}, syscall.EISDIR
	}
	return v, ViewOpen{KeepCache: true}, nil
}

// Read reads an old version.
func (v *Versions) Read(ctx context.Context, dest []byte, off int64) ([]byte, error) {
	if v.level != 2 {
		return nil, syscall.EISDIR
	}
	e := v.entry
	key := fmt.Sprintf("%s/%s@v%d@%s", v.doc, e.File.Name, e.Version, e.File.ContentID)
	fetch := fetchWith(func(ctx context.Context, off, n int64) (io.ReadCloser, error) {
		return v.fsys.repo.OpenVersion(ctx, v.doc, e.Version, e.File.Name, off, n)
	})
	n, err := v.fsys.blocks.ReadAt(context.WithoutCancel(ctx), key, e.File.Size, dest, off, fetch)
	if err != nil {
		return nil, v.fsys.fail("read", string(v.doc)+"/"+e.Name, err)
	}
	return dest[:n], nil
}
