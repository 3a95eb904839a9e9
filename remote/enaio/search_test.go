package enaio_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	dfs "github.com/dmsfs/dmsfs/fs"
	"github.com/dmsfs/dmsfs/fs/fstest"
	"github.com/dmsfs/dmsfs/remote/enaio"
	"github.com/dmsfs/dmsfs/remote/enaio/enaiotest"
)

// TestSearchResultList: .search/TYPE?FIELD=VALUE/ runs dms.GetResultList
// for the type with those conditions: exactly the matching documents of
// the sample data and of three made for the test, across folders; below a
// folder only its documents; a save through a result is a new version of
// the document; names there are EROFS; a query the server refuses is
// ENOENT.
func TestSearchResultList(t *testing.T) {
	srv := enaiotest.Start(t, enaiotest.Options{})
	e := fstest.Mount(t, connect(t, srv, enaio.Config{}), dfs.Options{})
	for i, p := range []string{"Personal/Muster, Erika/Zeugnis.txt", "Personal/Neu, Nina/Vertrag.txt", "Personal/Alt, Anton/Brief.txt"} {
		require.NoError(t, os.MkdirAll(e.Path(filepath.Dir(p)), 0o755))
		require.NoError(t, os.WriteFile(e.Path(p), []byte("document "+p+"\n"), 0o644))
		dept := []string{"Vertrieb", "Vertrieb", "Einkauf"}[i]
		require.NoError(t, unix.Setxattr(e.Path(p), "user.dms.field.Abteilung", []byte(dept), 0))
	}
	require.NoError(t, unix.Setxattr(e.Path("Personal/Muster, Max/Vertrag.txt"), "user.dms.field.Abteilung", []byte("Vertrieb"), 0))
	e.Settle()
	got := e.Names(".search/Personaldokument?Abteilung=Vertrieb")
	require.Len(t, got, 3, "the sample's contract and two of the three: %v", got)
	require.Contains(t, got, "Zeugnis.txt")
	require.Equal(t, []string{"Brief.txt"}, e.Names("Personal/.search/Personaldokument?Abteilung=Einkauf"))
	require.Equal(t, []string{"Zeugnis.txt"}, e.Names("Personal/Muster, Erika/.search/Personaldokument?Abteilung=Vertrieb"), "below a folder")
	require.Len(t, e.Names(".search/Personaldokument"), 4, "every document of the type")
	require.Len(t, e.Names(".search/Personaldokument?Name=Vert*"), 2, "a wildcard: both contracts")
	require.Equal(t, []string{"Brief.txt", "Zeugnis.txt"}, e.Names("Personal/.search/Personaldokument?Name!=V*"))
	require.Equal(t, []string{"Brief.txt"}, e.Names("Personal/.search/Personaldokument?Name=Bri?f.txt"))

	require.NoError(t, os.WriteFile(e.Path("Personal/.search/Personaldokument?Abteilung=Einkauf/Brief.txt"), []byte("saved via a search\n"), 0o644))
	e.Settle()
	require.Equal(t, "saved via a search\n", string(e.Content(e.MustNode("Personal/Alt, Anton/Brief.txt"), "")), "on the server")
	b, err := os.ReadFile(e.Path("Personal/Alt, Anton/Brief.txt"))
	require.NoError(t, err)
	require.Equal(t, "saved via a search\n", string(b), "%s", e.LogText())
	e.RequireVersions(e.MustNode("Personal/Alt, Anton/Brief.txt"), 2)
	require.ErrorIs(t, os.WriteFile(e.Path(".search/Personaldokument/new.txt"), []byte("x"), 0o644), syscall.EROFS)

	for _, q := range []string{".search/NoSuchType", ".search/Personaldokument?Nope=1", ".search/Personaldokument?Eintritt>kein Datum", ".search/Akte"} {
		_, err := os.Stat(e.Path(q))
		require.ErrorIs(t, err, os.ErrNotExist, q)
	}
}
