package fs

import (
	"context"
	"fmt"
	"io"
	"sort"
	"sync"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/dmsfs/dmsfs/remote"
	"github.com/dmsfs/dmsfs/versions"
)

// versionsNode is one level of the read-only .versions tree:
//
//	dir/.versions/                   level 0: one directory per file in dir
//	dir/.versions/<name>/            level 1: one file per earlier version
//	dir/.versions/<name>/<version>   level 2: the old content
type versionsNode struct {
	gofs.Inode
	fsys  *FS
	level int
	dir   *Dir // level 0

	// levels 1 and 2: the document and file
	doc  remote.ID
	file string // the file's name in the document; "" for the only file

	mu      sync.Mutex // level 1: guards entries, listed and gen
	entries []versions.Entry
	listed  time.Time
	gen     uint64 // fsys.changes when listed

	entry versions.Entry // level 2
}

func (d *Dir) versionsInode(ctx context.Context) *gofs.Inode {
	if ch := d.GetChild(versions.Dir); ch != nil {
		return ch
	}
	return d.NewInode(ctx, &versionsNode{fsys: d.fsys, dir: d}, gofs.StableAttr{Mode: syscall.S_IFDIR})
}

func (v *versionsNode) fillAttr(out *fuse.Attr) {
	out.Uid, out.Gid = v.fsys.opts.UID, v.fsys.opts.GID
	out.Nlink = 1
	if v.level < 2 {
		out.Mode = syscall.S_IFDIR | 0o555
		out.Size = 4096
		return
	}
	out.Mode = syscall.S_IFREG | 0o444
	out.Size = uint64(v.entry.File.Size)
	out.Blocks = (out.Size + 511) / 512
	t := v.entry.Time
	out.SetTimes(nil, &t, &t)
}

func (v *versionsNode) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	v.fillAttr(&out.Attr)
	return 0
}

// history returns the earlier versions of a level-1 node's file.
func (v *versionsNode) history(ctx context.Context) ([]versions.Entry, error) {
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

func (v *versionsNode) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	var list []fuse.DirEntry
	switch v.level {
	case 0:
		d := v.dir
		d.mu.Lock()
		err := d.refresh(ctx)
		seen := map[string]bool{}
		for name, n := range d.entries {
			if (d.doc != nil || !n.IsDir()) && d.hidden[name] == nil {
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
		for name := range seen {
			list = append(list, fuse.DirEntry{Name: name, Mode: syscall.S_IFDIR})
		}
		if err != nil {
			return nil, v.fsys.fail("readdir", d.path()+"/"+versions.Dir, err)
		}
	case 1:
		es, err := v.history(ctx)
		if err != nil {
			return nil, v.fsys.fail("versions", string(v.doc), err)
		}
		for _, e := range es {
			list = append(list, fuse.DirEntry{Name: e.Name, Mode: syscall.S_IFREG})
		}
	default:
		return nil, syscall.ENOTDIR
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	return gofs.NewListDirStream(list), 0
}

func (v *versionsNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	switch v.level {
	case 0:
		d := v.dir
		d.mu.Lock()
		ch, err := d.child(ctx, name)
		d.mu.Unlock()
		if err != nil {
			return nil, v.fsys.fail("lookup", d.path()+"/"+versions.Dir+"/"+name, err)
		}
		if ch == nil {
			return nil, syscall.ENOENT
		}
		f, ok := ch.Operations().(*File)
		if !ok {
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
		node := &versionsNode{fsys: v.fsys, level: 1, doc: doc, file: file}
		node.fillAttr(&out.Attr)
		return v.NewInode(ctx, node, gofs.StableAttr{Mode: syscall.S_IFDIR}), 0
	case 1:
		es, err := v.history(ctx)
		if err != nil {
			return nil, v.fsys.fail("versions", string(v.doc), err)
		}
		for _, e := range es {
			if e.Name == name {
				node := &versionsNode{fsys: v.fsys, level: 2, doc: v.doc, file: v.file, entry: e}
				node.fillAttr(&out.Attr)
				return v.NewInode(ctx, node, gofs.StableAttr{Mode: syscall.S_IFREG}), 0
			}
		}
	}
	return nil, syscall.ENOENT
}

func (v *versionsNode) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if flags&syscall.O_ACCMODE != syscall.O_RDONLY || flags&syscall.O_TRUNC != 0 {
		return nil, 0, syscall.EROFS
	}
	// Old versions never change: the kernel may keep their pages.
	return nil, fuse.FOPEN_KEEP_CACHE, 0
}

func (v *versionsNode) Read(ctx context.Context, fh gofs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
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
	return fuse.ReadResultData(dest[:n]), 0
}

// The .versions tree is read-only.

func (v *versionsNode) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return syscall.EROFS
}

func (v *versionsNode) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	return nil, nil, 0, syscall.EROFS
}

func (v *versionsNode) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}

func (v *versionsNode) Unlink(ctx context.Context, name string) syscall.Errno { return syscall.EROFS }

func (v *versionsNode) Rmdir(ctx context.Context, name string) syscall.Errno { return syscall.EROFS }

func (v *versionsNode) Rename(ctx context.Context, name string, newParent gofs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	return syscall.EROFS
}
