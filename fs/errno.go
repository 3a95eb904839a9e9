package fs

import (
	"syscall"

	"github.com/dmsfs/dmsfs/remote"
)

// errno is the one translation of the core's errors to what the kernel
// returns to applications.
func errno(err error) syscall.Errno {
	return remote.Errno(err)
}
