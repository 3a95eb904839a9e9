package fs_test

import (
	"sort"
	"testing"

	"github.com/hanwen/go-fuse/v2/posixtest"
	"github.com/stretchr/testify/require"

	dfs "github.com/dmsfs/dmsfs/fs"
	"github.com/dmsfs/dmsfs/fs/fstest"
	"github.com/dmsfs/dmsfs/remote/embedded"
)

// unsupported are the POSIX features a document repository has no place
// for: links, symbolic links, and locks shared with other hosts.
var unsupported = map[string]string{
	"Link": "hard links", "LinkUnlinkRename": "hard links",
	"SymlinkReadlink": "symbolic links", "SetattrSymlink": "symbolic links", "OpenSymlinkRace": "symbolic links",
	"FcntlFlockLocksFile": "the kernel's local locks only", "FcntlFlockSetLk": "the kernel's local locks only",
	"XAttr": "only user.dms.* attributes are kept (fstest's Xattrs case tests them)",
}

// TestPOSIX runs go-fuse's POSIX conformance tests on a mount.
func TestPOSIX(t *testing.T) {
	var names []string
	for name := range posixtest.All {
		if unsupported[name] == "" {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			r, err := embedded.Open(t.TempDir(), embedded.Options{})
			require.NoError(t, err)
			t.Cleanup(func() { r.Close() })
			e := fstest.Mount(t, r, dfs.Options{})
			posixtest.All[name](t, e.Mnt)
		})
	}
}
