package fs_test

import (
	"net/url"
	"os"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/require"

	dfs "github.com/dmsfs/dmsfs/fs"
	"github.com/dmsfs/dmsfs/fs/fstest"
	"github.com/dmsfs/dmsfs/remote/embedded"
)

// TestLibreOfficeSaves: LibreOffice itself (headless, driven through UNO
// by testdata/office_save.py) opens a document on the mount, changes it
// and saves, as File > Save does: each save is exactly one new version of
// the same document with what was typed, its lock file and temporary copy
// never reach the repository, the document keeps its mode, and a save
// through a search folder's result is the document's next version too.
func TestLibreOfficeSaves(t *testing.T) {
	fstest.RequireTools(t, "soffice")
	// python3-uno is for the system's Python, whatever python3 is first
	// in PATH.
	py := "/usr/bin/python3"
	if out, err := exec.Command(py, "-c", "import uno").CombinedOutput(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("python3-uno is needed on CI: %s", out)
		}
		t.Skipf("no python3-uno: %s", out)
	}
	r, err := embedded.Open(t.TempDir(), embedded.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { r.Close() })
	e := fstest.Mount(t, r, dfs.Options{})
	profile := t.TempDir()
	profileURL := (&url.URL{Scheme: "file", Path: profile}).String()
	src := t.TempDir() + "/letter.txt"
	require.NoError(t, os.WriteFile(src, []byte("Dear reader,"), 0o644))
	require.NoError(t, os.Mkdir(e.Path("letters"), 0o755))
	e.Run("soffice", "-env:UserInstallation="+profileURL, "--headless", "--convert-to", "odt", "--outdir", e.Path("letters"), src)
	doc := e.Path("letters/letter.odt")
	e.Settle()
	first := e.MustNode("letters/letter.odt")
	e.RequireVersions(first, 1)
	before, err := os.Stat(doc)
	require.NoError(t, err)

	e.Run(py, "testdata/office_save.py", profile, doc, " first save.", " second save.")
	e.Settle()
	n := e.MustNode("letters/letter.odt")
	require.Equal(t, first.ID, n.ID, "the same document")
	e.RequireVersions(n, 3, "exactly one version per save")
	require.Len(t, e.Tree(e.MustNode("")), 1, "no lock file or temporary copy on the server: %v", e.Tree(e.MustNode("")))
	require.Contains(t, e.Run("soffice", "-env:UserInstallation="+profileURL, "--headless", "--cat", doc), "Dear reader, first save. second save.")
	after, err := os.Stat(doc)
	require.NoError(t, err)
	require.Equal(t, before.Mode(), after.Mode())

	e.Run(py, "testdata/office_save.py", profile, e.Path(".search/*.odt/letter.odt"), " Saved in a search.")
	e.Settle()
	e.RequireVersions(e.MustNode("letters/letter.odt"), 4, "a save through a search result")
	require.Len(t, e.Tree(e.MustNode("")), 1)
	require.Contains(t, e.Run("soffice", "-env:UserInstallation="+profileURL, "--headless", "--cat", doc), "second save. Saved in a search.")
	after, err = os.Stat(doc)
	require.NoError(t, err)
	require.Equal(t, before.Mode(), after.Mode(), "at the document's own path")
}
