package remote

import (
	"context"
	"errors"
	"syscall"
)

// Sentinel errors. Backends wrap them (fmt.Errorf("…: %w", ErrNotFound)) so
// that the server's message travels with the kind.
var (
	ErrNotFound    = errors.New("not found")
	ErrExist       = errors.New("already exists")
	ErrConflict    = errors.New("changed on the server since it was read")
	ErrPermission  = errors.New("permission denied")
	ErrUnsupported = errors.New("not supported by this repository")
	ErrReadOnly    = errors.New("repository is read-only")
	ErrNotEmpty    = errors.New("folder not empty")
	ErrNotFolder   = errors.New("not a folder")
	ErrIsFolder    = errors.New("is a folder")
	ErrInvalidName = errors.New("invalid name")
	// ErrUnavailable is a server or network failure that persisted after
	// retries.
	ErrUnavailable = errors.New("repository unavailable")
	// ErrProtocol is an answer the client could not understand.
	ErrProtocol = errors.New("malformed answer from the repository")
	// ErrRefused is a request the server refused for a reason that will
	// not change by asking again (an HTTP 4xx that is neither a rate limit
	// nor a conflict, a quota, a rule of the document type).
	ErrRefused = errors.New("refused by the repository")
)

// Permanent tells a failure that no retry will mend (the server said no)
// from a transient one (network, 5xx, 429, a malformed answer). Not found,
// exists and conflict are neither: the upload queue resolves them.
func Permanent(err error) bool {
	for _, kind := range []error{ErrRefused, ErrPermission, ErrUnsupported, ErrReadOnly, ErrInvalidName, ErrIsFolder, ErrNotFolder} {
		if errors.Is(err, kind) {
			return true
		}
	}
	return false
}

// Errno maps an error to the errno the filesystem returns for it.
func Errno(err error) syscall.Errno {
	var errno syscall.Errno
	switch {
	case err == nil:
		return 0
	case errors.As(err, &errno):
		return errno
	case errors.Is(err, ErrNotFound):
		return syscall.ENOENT
	case errors.Is(err, ErrExist):
		return syscall.EEXIST
	case errors.Is(err, ErrPermission):
		return syscall.EACCES
	case errors.Is(err, ErrReadOnly):
		return syscall.EROFS
	case errors.Is(err, ErrUnsupported):
		return syscall.ENOTSUP
	case errors.Is(err, ErrNotEmpty):
		return syscall.ENOTEMPTY
	case errors.Is(err, ErrNotFolder):
		return syscall.ENOTDIR
	case errors.Is(err, ErrIsFolder):
		return syscall.EISDIR
	case errors.Is(err, ErrInvalidName):
		return syscall.EINVAL
	case errors.Is(err, ErrRefused):
		return syscall.EPERM
	case errors.Is(err, context.Canceled):
		return syscall.EINTR
	}
	// Conflicts are resolved by the filesystem (conflict copies); one that
	// reaches an application, like any server or protocol failure, is EIO.
	return syscall.EIO
}
