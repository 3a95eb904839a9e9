package core

import (
	"syscall"
	"time"

	"github.com/dmsfs/dmsfs/cache"
)

// Node is what a directory holds: a *Dir, a *File or a *Versions.
type Node interface {
	// Ino is the node's inode number, fixed for its life.
	Ino() uint64
	// Attr is what stat shows.
	Attr() Attr
}

// Attr is what stat shows of a node.
type Attr struct {
	Mode  uint32 // type bits and permissions
	Size  int64
	Mtime time.Time
	UID   uint32
	GID   uint32
	Nlink uint32
	// Uncached: the kernel must not keep the attributes (a size not
	// known yet).
	Uncached bool
}

// IsDir tells directories from files.
func (a Attr) IsDir() bool { return a.Mode&syscall.S_IFMT == syscall.S_IFDIR }

// SetAttr is a setattr request; nil fields are left as they are.
type SetAttr struct {
	Size  *int64
	Mode  *uint32
	UID   *uint32
	GID   *uint32
	Mtime *time.Time
}

// DirEntry is one name in a listing.
type DirEntry struct {
	Name string
	Dir  bool
}

// localAttr are attributes kept locally (repositories do not store them).
// Zero values mean "not set here".
type localAttr struct {
	mode     uint32
	uid, gid uint32
	owner    bool
	mtime    time.Time
	// mtimeSet: mtime was set explicitly (utimes), not just by writing.
	mtimeSet bool
}

func attrFrom(a cache.Attr) localAttr {
	return localAttr{mode: a.Mode, uid: a.UID, gid: a.GID, owner: a.HasOwner, mtime: a.Mtime, mtimeSet: !a.Mtime.IsZero()}
}

// apply sets the mode, owner and time parts of a setattr.
func (a *localAttr) apply(in SetAttr, uid, gid uint32) {
	if in.Mode != nil {
		a.mode = *in.Mode & 0o7777
	}
	if in.UID != nil || in.GID != nil {
		if !a.owner {
			a.uid, a.gid = uid, gid
		}
		if in.UID != nil {
			a.uid = *in.UID
		}
		if in.GID != nil {
			a.gid = *in.GID
		}
		a.owner = true
	}
	if in.Mtime != nil {
		a.mtime, a.mtimeSet = *in.Mtime, true
	}
}

// fill completes attributes with the local ones.
func (a localAttr) fill(out *Attr, defMode uint32, mtime time.Time, uid, gid uint32) {
	out.Mode |= defMode
	if a.mode != 0 {
		out.Mode = out.Mode&syscall.S_IFMT | a.mode&0o7777
	}
	out.Mtime = mtime
	if !a.mtime.IsZero() {
		out.Mtime = a.mtime
	}
	out.UID, out.GID = uid, gid
	if a.owner {
		out.UID, out.GID = a.uid, a.gid
	}
}

func (a localAttr) record(contentID string) cache.Attr {
	return cache.Attr{ContentID: contentID, Mode: a.mode, UID: a.uid, GID: a.gid, HasOwner: a.owner, Mtime: a.mtime}
}
