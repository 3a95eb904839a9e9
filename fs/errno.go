package fs

import (
	"context"
	"errors"
	"syscall"

	"github.com/dmsfs/dmsfs/remote"
)

// errno is the one translation of the core's errors (remote's sentinels,
// errnos, context ends) to what the kernel returns to applications.
func errno(err error) syscall.Errno {
	var errno syscall.Errno
	switch {
	case err == nil:
		return 0
	case errors.As(err, &errno):
		return errno
	case errors.Is(err, remote.ErrNotFound):
		return syscall.ENOENT
	case errors.Is(err, remote.ErrExist):
		return syscall.EEXIST
	case errors.Is(err, remote.ErrPermission):
		return syscall.EACCES
	case errors.Is(err, remote.ErrReadOnly):
		return syscall.EROFS
	case errors.Is(err, remote.ErrUnsupported):
		return syscall.ENOTSUP
	case errors.Is(err, remote.ErrNotEmpty):
		return syscall.ENOTEMPTY
	case errors.Is(err, remote.ErrNotFolder):
		return syscall.ENOTDIR
	case errors.Is(err, remote.ErrIsFolder):
		return syscall.EISDIR
	case errors.Is(err, remote.ErrInvalidName):
		return syscall.EINVAL
	case errors.Is(err, remote.ErrRefused):
		return syscall.EPERM
	case errors.Is(err, context.Canceled):
		return syscall.EINTR
	}
	// Conflicts are resolved by the filesystem (conflict copies); one that
	// reaches an application, like any server or protocol failure, is EIO.
	return syscall.EIO
}
