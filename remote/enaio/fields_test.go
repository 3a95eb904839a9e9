package enaio_test

import (
	"context"
	"os"
	"syscall"
	"testing"

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
