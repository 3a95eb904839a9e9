package invenio_test

import (
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	dfs "github.com/dmsfs/dmsfs/fs"
	"github.com/dmsfs/dmsfs/fs/fstest"
	"github.com/dmsfs/dmsfs/remote/invenio"
	"github.com/dmsfs/dmsfs/remote/invenio/inveniotest"
)

// TestSearchRecords: .search/<q>/ at the root lists the records the
// records search finds for q (metadata.title:…, free text); inside a
// record, its files whose names contain the text; a q the server refuses
// is ENOENT.
func TestSearchRecords(t *testing.T) {
	r, _ := connect(t, inveniotest.Options{}, invenio.Config{})
	e := fstest.Mount(t, r, dfs.Options{})
	for _, rec := range []string{"Alpha study", "Beta report", "Gamma notes"} {
		require.NoError(t, os.Mkdir(e.Path(rec), 0o755))
	}
	require.NoError(t, os.WriteFile(e.Path("Alpha study/data-2024.csv"), []byte("a,b\n"), 0o644))
	require.NoError(t, os.WriteFile(e.Path("Alpha study/readme.txt"), []byte("read me\n"), 0o644))
	e.Run("setfattr", "-n", "user.dms.field.description", "-v", "a report on alpha", e.Path("Alpha study"))
	e.Settle()
	require.Equal(t, []string{"Alpha study"}, e.Names(".search/metadata.title:alpha"))
	require.Equal(t, []string{"Alpha study", "Beta report"}, e.Names(".search/report"), "free text: title or description")
	require.Equal(t, []string{"data-2024.csv"}, e.Names("Alpha study/.search/DATA"), "a record's files")
	got, err := os.ReadFile(e.Path(".search/metadata.title:alpha/Alpha study/readme.txt"))
	require.NoError(t, err)
	require.Equal(t, "read me\n", string(got))
	_, err = os.Stat(e.Path(".search/metadata.title:(alpha"))
	require.ErrorIs(t, err, os.ErrNotExist, "a q the server refuses")
}
