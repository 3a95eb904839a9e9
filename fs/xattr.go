package fs

import (
	"context"
	"strings"
	"syscall"

	"github.com/dmsfs/dmsfs/fs/core"
)

// Extended attributes: the kernel's getxattr/setxattr/listxattr/
// removexattr on files and directories, over the core's (core/xattr.go).

// xattrNode is what dirNode and fileNode share of the core.
type xattrNode interface {
	Xattrs(ctx context.Context, withFields bool) (map[string]string, error)
	SetXattr(ctx context.Context, name string, value []byte) error
	RemoveXattr(ctx context.Context, name string) error
}

// getxattr copies one attribute into dest (its size when dest is empty,
// ERANGE when it is too small).
func getxattr(ctx context.Context, n xattrNode, name string, dest []byte) (uint32, syscall.Errno) {
	if !core.Ours(name) {
		if !strings.HasPrefix(name, "user.") {
			// No SELinux labels, ACLs or capabilities here. ENOTSUP (not
			// ENODATA) makes ls -l, cp -a and rsync -X stop asking for
			// them on this mount after the first file: each question is
			// a round trip into the daemon that the kernel never caches.
			return 0, syscall.ENOTSUP
		}
		return 0, syscall.ENODATA
	}
	attrs, err := n.Xattrs(ctx, core.IsField(name))
	if err != nil {
		return 0, errno(err)
	}
	v, ok := attrs[name]
	if !ok {
		return 0, syscall.ENODATA
	}
	return fit(dest, []byte(v))
}

func listxattr(ctx context.Context, n xattrNode, dest []byte) (uint32, syscall.Errno) {
	attrs, err := n.Xattrs(ctx, true)
	if err != nil {
		return 0, errno(err)
	}
	var b strings.Builder
	for _, name := range core.XattrNames(attrs) {
		b.WriteString(name)
		b.WriteByte(0)
	}
	return fit(dest, []byte(b.String()))
}

// fit answers a getxattr/listxattr buffer: the size asked for with an
// empty one, ERANGE for one too small.
func fit(dest, v []byte) (uint32, syscall.Errno) {
	if len(dest) == 0 {
		return uint32(len(v)), 0
	}
	if len(dest) < len(v) {
		return uint32(len(v)), syscall.ERANGE
	}
	return uint32(copy(dest, v)), 0
}

const (
	xattrCreate  = 1 // XATTR_CREATE
	xattrReplace = 2 // XATTR_REPLACE
)

func setxattr(ctx context.Context, n xattrNode, name string, data []byte, flags uint32) syscall.Errno {
	if !core.Ours(name) {
		return syscall.ENOTSUP // only user.dms.* are kept
	}
	if flags&(xattrCreate|xattrReplace) != 0 {
		attrs, err := n.Xattrs(ctx, core.IsField(name))
		if err != nil {
			return errno(err)
		}
		_, exists := attrs[name]
		if flags&xattrCreate != 0 && exists {
			return syscall.EEXIST
		}
		if flags&xattrReplace != 0 && !exists {
			return syscall.ENODATA
		}
	}
	return errno(n.SetXattr(ctx, name, data))
}

func removexattr(ctx context.Context, n xattrNode, name string) syscall.Errno {
	if !core.Ours(name) {
		return syscall.ENODATA
	}
	return errno(n.RemoveXattr(ctx, name))
}

func (n *dirNode) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	return getxattr(ctx, n.d, attr, dest)
}

func (n *dirNode) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	return listxattr(ctx, n.d, dest)
}

func (n *dirNode) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	return setxattr(ctx, n.d, attr, data, flags)
}

func (n *dirNode) Removexattr(ctx context.Context, attr string) syscall.Errno {
	return removexattr(ctx, n.d, attr)
}

func (n *fileNode) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	return getxattr(ctx, n.f, attr, dest)
}

func (n *fileNode) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	return listxattr(ctx, n.f, dest)
}

func (n *fileNode) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	return setxattr(ctx, n.f, attr, data, flags)
}

func (n *fileNode) Removexattr(ctx context.Context, attr string) syscall.Errno {
	return removexattr(ctx, n.f, attr)
}
