package axelor_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	dfs "github.com/dmsfs/dmsfs/fs"
	"github.com/dmsfs/dmsfs/fs/fstest"
	"github.com/dmsfs/dmsfs/remote/axelor/axelortest"
)

// TestSearchPattern: dir/.search/<text>/ on Axelor lists the documents
// below dir whose names contain the text, as the DMS view's search does
// (case-insensitive), across folders; a save into a result goes to the
// document; names there are EROFS.
func TestSearchPattern(t *testing.T) {
	_, url := newServer(t, axelortest.Options{})
	e := fstest.Mount(t, newClient(t, url), dfs.Options{})
	for _, p := range []string{"a/report-2024.pdf", "a/b/Report-final.odt", "a/b/notes.txt", "c/other.txt", "top-report.txt"} {
		require.NoError(t, os.MkdirAll(filepath.Dir(e.Path(p)), 0o755))
		require.NoError(t, os.WriteFile(e.Path(p), []byte("content of "+p+"\n"), 0o644))
	}
	require.Equal(t, []string{"Report-final.odt", "report-2024.pdf", "top-report.txt"}, e.Names(".search/report"))
	require.Equal(t, []string{"Report-final.odt", "report-2024.pdf"}, e.Names("a/.search/REPORT"), "below a only")
	require.Empty(t, e.Names("c/.search/report"))
	require.NotContains(t, e.Names("."), ".search")

	require.NoError(t, os.WriteFile(e.Path("a/.search/report/Report-final.odt"), []byte("saved via a search\n"), 0o644))
	e.Settle()
	got, err := os.ReadFile(e.Path("a/b/Report-final.odt"))
	require.NoError(t, err)
	require.Equal(t, "saved via a search\n", string(got))
	require.ErrorIs(t, os.WriteFile(e.Path(".search/report/new.txt"), []byte("x"), 0o644), syscall.EROFS)
	require.ErrorIs(t, os.Remove(e.Path(".search/report/top-report.txt")), syscall.EROFS)
}
