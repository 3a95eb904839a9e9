package fs

import (
	"context"
	"fmt"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dmsfs/dmsfs/remote"
)

func TestErrno(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want syscall.Errno
	}{
		{nil, 0},
		{fmt.Errorf("lookup: %w", remote.ErrNotFound), syscall.ENOENT},
		{fmt.Errorf("upload: %w", remote.ErrRefused), syscall.EPERM},
		{fmt.Errorf("write: %w", syscall.ENOSPC), syscall.ENOSPC},
		{fmt.Errorf("%w", remote.ErrConflict), syscall.EIO},
		{fmt.Errorf("%w", remote.ErrUnavailable), syscall.EIO},
		{context.Canceled, syscall.EINTR},
	} {
		require.Equal(t, tc.want, errno(tc.err), "%v", tc.err)
	}
}
