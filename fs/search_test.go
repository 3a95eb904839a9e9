package fs_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	dfs "github.com/dmsfs/dmsfs/fs"
	"github.com/dmsfs/dmsfs/fs/fstest"
	"github.com/dmsfs/dmsfs/remote/embedded"
)

// TestSearchFolders: dir/.search/<query>/ lists the documents below dir
// that the repository finds (embedded: globs on names, field=value), across
// folders, with namesakes told apart; a save into a result is a new
// version of the document found, and so is an office program's save (its
// lock and temporary files stay local); names there cannot be made,
// removed or moved (EROFS); a malformed query is ENOENT; .search is in no listing.
func TestSearchFolders(t *testing.T) {
	r, err := embedded.Open(t.TempDir(), embedded.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { r.Close() })
	e := fstest.Mount(t, r, dfs.Options{})
	for _, p := range []string{"a/x.pdf", "a/b/y.pdf", "a/b/report.odt", "c/z.txt", "c/x.pdf"} {
		require.NoError(t, os.MkdirAll(filepath.Dir(e.Path(p)), 0o755))
		require.NoError(t, os.WriteFile(e.Path(p), []byte("content of "+p+"\n"), 0o644))
	}
	e.Run("setfattr", "-n", "user.dms.field.author", "-v", "Meier", e.Path("a/b/y.pdf"))
	e.Run("setfattr", "-n", "user.dms.field.author", "-v", "Schulz", e.Path("c/z.txt"))
	e.Settle()

	pdfs := e.Names(".search/*.pdf")
	require.Len(t, pdfs, 3, "across folders: %v", pdfs)
	require.Contains(t, pdfs, "y.pdf")
	var dups int
	for _, n := range pdfs {
		if strings.HasPrefix(n, "x (") || strings.HasPrefix(n, "x.pdf") || strings.HasPrefix(n, "x (") {
			dups++
		}
	}
	require.Equal(t, 2, dups, "both x.pdf, told apart: %v", pdfs)
	require.Equal(t, []string{"x.pdf", "y.pdf"}, e.Names("a/.search/*.pdf"), "only below a")
	require.Equal(t, []string{"y.pdf"}, e.Names(".search/author=Meier"))
	require.Equal(t, []string{"z.txt"}, e.Names(".search/author=Sch*"))
	require.Empty(t, e.Names(".search/*.doc"))

	// A save into a result is the document's next version.
	require.NoError(t, os.WriteFile(e.Path(".search/author=Meier/y.pdf"), []byte("saved through a search\n"), 0o644))
	e.Settle()
	got, err := os.ReadFile(e.Path("a/b/y.pdf"))
	require.NoError(t, err)
	require.Equal(t, "saved through a search\n", string(got))
	e.RequireVersions(e.MustNode("a/b/y.pdf"), 2)

	// An office program's save through a result: its lock file and its
	// temporary copy stay local, and the copy renamed over the result is
	// the document's next version.
	lock := filepath.Join(e.Path(".search/author=Meier"), ".~lock.y.pdf#")
	require.NoError(t, os.WriteFile(lock, []byte("lock"), 0o644))
	tmp := filepath.Join(e.Path(".search/author=Meier"), "lu1abc.tmp")
	require.NoError(t, os.WriteFile(tmp, []byte("saved by the office program\n"), 0o600))
	st, err := os.Stat(e.Path("a/b/y.pdf"))
	require.NoError(t, err)
	require.NoError(t, os.Rename(tmp, filepath.Join(e.Path(".search/author=Meier"), "y.pdf")))
	require.NoError(t, os.Chmod(filepath.Join(e.Path(".search/author=Meier"), "y.pdf"), st.Mode().Perm()))
	require.NoError(t, os.Remove(lock))
	e.Settle()
	got, err = os.ReadFile(e.Path("a/b/y.pdf"))
	require.NoError(t, err)
	require.Equal(t, "saved by the office program\n", string(got))
	e.RequireVersions(e.MustNode("a/b/y.pdf"), 3)
	st2, err := os.Stat(e.Path("a/b/y.pdf"))
	require.NoError(t, err)
	require.Equal(t, st.Mode(), st2.Mode(), "the mode the program restored, not its temp file's, at the document's own path too")
	require.Len(t, e.Tree(e.MustNode("")), 5, "no lock or temp document")
	require.Equal(t, []string{"y.pdf"}, e.Names(".search/author=Meier"))

	// The names of a search are the repository's.
	res := e.Path(".search/author=Meier")
	require.ErrorIs(t, os.WriteFile(filepath.Join(res, "new.txt"), []byte("x"), 0o644), syscall.EROFS)
	require.ErrorIs(t, os.Remove(filepath.Join(res, "y.pdf")), syscall.EROFS)
	require.ErrorIs(t, os.Rename(filepath.Join(res, "y.pdf"), e.Path("moved.pdf")), syscall.EROFS)
	require.ErrorIs(t, os.Mkdir(filepath.Join(res, "sub"), 0o755), syscall.EROFS)
	require.NoError(t, os.WriteFile(filepath.Join(res, "lu2.tmp"), []byte("x"), 0o644))
	require.ErrorIs(t, os.Rename(filepath.Join(res, "lu2.tmp"), filepath.Join(res, "new.pdf")), syscall.EROFS, "a temp file becomes no new document")
	require.NoError(t, os.Remove(filepath.Join(res, "lu2.tmp")))
	_, err = os.Stat(e.Path("a/b/y.pdf"))
	require.NoError(t, err)

	_, err = os.Stat(e.Path(".search/[broken"))
	require.ErrorIs(t, err, os.ErrNotExist, "a malformed query")
	why := e.Run("getfattr", "--only-values", "-n", "user.dms.error", e.Path(".search"))
	require.Contains(t, why, "[broken", "the .search directory says why")
	require.NotContains(t, e.Names("."), ".search")
	require.NotContains(t, e.Run("find", e.Mnt), ".search")
	out := e.Run("rsync", "-a", "--dry-run", "-v", e.Mnt+"/", t.TempDir()+"/")
	require.NotContains(t, out, ".search")
}
