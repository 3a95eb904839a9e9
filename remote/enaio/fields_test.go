package enaio_test

import (
	"context"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	dfs "github.com/dmsfs/dmsfs/fs"
	"github.com/dmsfs/dmsfs/fs/fstest"
	"github.com/dmsfs/dmsfs/remote/enaio"
	"github.com/dmsfs/dmsfs/remote/enaio/enaiotest"
)

// TestIndexData (issue 14, acceptance 2): a personnel document's index
// fields through a mount: a text field is set on the server; a date field
// given "not-a-date" is EINVAL and nothing is sent; clearing the mandatory
// field is refused by the server (EINVAL); a system field is EPERM but for
// the ones clients may set; another client's change of a field this mount
// still shows as before makes the write fail, and the other change stays.
func TestIndexData(t *testing.T) {
	ctx := context.Background()
	srv := enaiotest.Start(t, enaiotest.Options{})
	repo := connect(t, srv, enaio.Config{})
	e := fstest.Mount(t, repo, dfs.Options{})
	require.NoError(t, os.MkdirAll(e.Path("Personal/Muster, Max"), 0o755))
	p := e.Path("Personal/Muster, Max/Vertrag.txt")
	require.NoError(t, os.WriteFile(p, []byte("Vertrag"), 0o644))
	id := e.MustNode("Personal/Muster, Max/Vertrag.txt").ID

	require.NoError(t, unix.Setxattr(p, "user.dms.field.Abteilung", []byte("Vertrieb"), 0))
	require.NoError(t, unix.Setxattr(p, "user.dms.field.Personalnummer", []byte("4711"), 0))
	sent, options := srv.LastUpdate()
	require.Len(t, sent.Fields, 1, "only the changed field is sent")
	require.Equal(t, "Personalnummer", sent.Fields[0].InternalName)
	require.Empty(t, sent.Tables)
	require.NotEmpty(t, sent.Timestamp, "with the concurrency timestamp")
	require.Empty(t, options)
	fields, err := repo.Fields(ctx, id)
	require.NoError(t, err)
	require.Equal(t, "Vertrieb", fields["Abteilung"])
	require.Equal(t, "4711", fields["Personalnummer"])

	updates := srv.Jobs("DMS.XMLUpdate")
	require.ErrorIs(t, unix.Setxattr(p, "user.dms.field.Eintritt", []byte("not-a-date"), 0), syscall.EINVAL)
	require.Equal(t, updates, srv.Jobs("DMS.XMLUpdate"), "nothing sent")
	require.NoError(t, unix.Setxattr(p, "user.dms.field.Eintritt", []byte("2026-04-01"), 0))

	require.ErrorIs(t, unix.Removexattr(p, "user.dms.field.Abteilung"), syscall.EINVAL, "the server keeps the mandatory field")
	require.ErrorIs(t, unix.Setxattr(p, "user.dms.field.OBJECT_MAIN", []byte("1"), 0), syscall.EPERM)
	require.NoError(t, unix.Setxattr(p, "user.dms.field.OBJECT_FOREIGNID", []byte("HR-4711"), 0), "a system field clients may set")
	require.ErrorIs(t, unix.Setxattr(p, "user.dms.field.Farbe", []byte("rot"), 0), syscall.ENOTSUP, "object types are fixed")

	// Another client changes the department; this mount still shows
	// "Vertrieb" and its write must not overwrite "Einkauf".
	n, err := repo.Stat(ctx, id)
	require.NoError(t, err)
	other := "Einkauf"
	_, err = repo.SetField(ctx, id, n.Token, "Abteilung", &other)
	require.NoError(t, err)
	require.ErrorIs(t, unix.Setxattr(p, "user.dms.field.Abteilung", []byte("Marketing"), 0), syscall.EIO)
	fields, err = repo.Fields(ctx, id)
	require.NoError(t, err)
	require.Equal(t, "Einkauf", fields["Abteilung"], "the other change stays")
}

// TestTableField: a table field is its rows as JSON; a write replaces the
// rows (REPLACETABLEFIELDS=1, only that table sent), checked column by
// column before sending; removexattr empties it; the files table is not
// a field.
func TestTableField(t *testing.T) {
	ctx := context.Background()
	srv := enaiotest.Start(t, enaiotest.Options{})
	repo := connect(t, srv, enaio.Config{})
	e := fstest.Mount(t, repo, dfs.Options{})
	require.NoError(t, os.MkdirAll(e.Path("Personal/Muster, Erika"), 0o755))
	p := e.Path("Personal/Muster, Erika/Zeugnis.txt")
	require.NoError(t, os.WriteFile(p, []byte("Zeugnis"), 0o644))
	require.NoError(t, unix.Setxattr(p, "user.dms.field.Abteilung", []byte("Vertrieb"), 0))
	id := e.MustNode("Personal/Muster, Erika/Zeugnis.txt").ID

	rows := `[{"Kurs":"Erste Hilfe","Datum":"2024-03-01"},{"Kurs":"Brandschutz"}]`
	require.NoError(t, unix.Setxattr(p, "user.dms.field.Schulungen", []byte(rows), 0))
	sent, options := srv.LastUpdate()
	require.Empty(t, sent.Fields)
	require.Len(t, sent.Tables, 1, "only that table is sent")
	require.Equal(t, "Schulungen", sent.Tables[0].InternalName)
	require.Len(t, sent.Tables[0].Rows, 2)
	require.Equal(t, "REPLACETABLEFIELDS=1", options)

	// The server gives table dates as dd.mm.yyyy (spec §3.2).
	want := `[{"Datum":"01.03.2024","Kurs":"Erste Hilfe"},{"Kurs":"Brandschutz"}]`
	fields, err := repo.Fields(ctx, id)
	require.NoError(t, err)
	require.Equal(t, want, fields["Schulungen"])
	fresh := fstest.Mount(t, connect(t, srv, enaio.Config{}), dfs.Options{})
	buf := make([]byte, 256)
	n, err := unix.Getxattr(fresh.Path("Personal/Muster, Erika/Zeugnis.txt"), "user.dms.field.Schulungen", buf)
	require.NoError(t, err)
	require.Equal(t, want, string(buf[:n]), "a fresh mount shows the rows")

	updates := srv.Jobs("DMS.XMLUpdate")
	for _, bad := range []string{`[{"Kurs":"X","Datum":"not-a-date"}]`, `[{"Raum":"3"}]`, `not json`, `[{"Kurs":["a"]}]`} {
		require.ErrorIs(t, unix.Setxattr(p, "user.dms.field.Schulungen", []byte(bad), 0), syscall.EINVAL, bad)
	}
	require.Equal(t, updates, srv.Jobs("DMS.XMLUpdate"), "nothing sent")
	require.ErrorIs(t, unix.Setxattr(p, "user.dms.field.Files", []byte(`[]`), 0), syscall.EPERM, "the files table is dmsfs's")

	require.NoError(t, unix.Removexattr(p, "user.dms.field.Schulungen"))
	fields, err = repo.Fields(ctx, id)
	require.NoError(t, err)
	require.NotContains(t, fields, "Schulungen")
	_, err = unix.Getxattr(p, "user.dms.field.Schulungen", buf)
	require.ErrorIs(t, err, unix.ENODATA)
}

// TestMtimeInFilesTable: an mtime a program sets is kept in the files
// table's MTime column, so a mount with a new cache shows it; a rename
// keeps it, a new content drops it.
func TestMtimeInFilesTable(t *testing.T) {
	srv := enaiotest.Start(t, enaiotest.Options{})
	e := fstest.Mount(t, connect(t, srv, enaio.Config{}), dfs.Options{})
	require.NoError(t, os.MkdirAll(e.Path("Akten/Projekt"), 0o755))
	p := e.Path("Akten/Projekt/plan.txt")
	require.NoError(t, os.WriteFile(p, []byte("Plan"), 0o644))
	old := time.Date(2019, 5, 4, 3, 2, 1, 500, time.UTC)
	require.NoError(t, os.Chtimes(p, old, old))
	e.Settle()
	require.NoError(t, os.Rename(p, e.Path("Akten/Projekt/plan-v1.txt")))
	e.Settle()

	fresh := fstest.Mount(t, connect(t, srv, enaio.Config{}), dfs.Options{})
	st, err := os.Stat(fresh.Path("Akten/Projekt/plan-v1.txt"))
	require.NoError(t, err)
	require.True(t, st.ModTime().Equal(old), "kept through a rename: %v", st.ModTime())

	require.NoError(t, os.WriteFile(fresh.Path("Akten/Projekt/plan-v1.txt"), []byte("Plan 2"), 0o644))
	fresh.Settle()
	other := fstest.Mount(t, connect(t, srv, enaio.Config{}), dfs.Options{})
	st, err = os.Stat(other.Path("Akten/Projekt/plan-v1.txt"))
	require.NoError(t, err)
	require.False(t, st.ModTime().Equal(old), "a new content has a new mtime")
}
