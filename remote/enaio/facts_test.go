package enaio_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dmsfs/dmsfs/remote"
	"github.com/dmsfs/dmsfs/remote/enaio"
	"github.com/dmsfs/dmsfs/remote/enaio/enaiotest"
)

// TestWriteJobsAsDocumented (issue 13, item 8): dms.XMLInsert carries the
// logged-in user's JobUserGUID (documented as required; the test server
// refuses an insert without it), the dms jobs go out in the reference
// client's "DMS." spelling, and a document's read asks for its files
// without the preview (DIA) file, which the server adds for Flags 0.
func TestWriteJobsAsDocumented(t *testing.T) {
	srv := enaiotest.Start(t, enaiotest.Options{})
	r := inFolder(t, connect(t, srv, enaio.Config{}), "docs")
	ctx := context.Background()
	root, err := r.Root(ctx)
	require.NoError(t, err)
	n, err := r.Insert(ctx, root.ID, "a.txt", remote.Content{ReaderAt: strings.NewReader("abc"), Size: 3})
	require.NoError(t, err, "an insert with JobUserGUID")
	require.Equal(t, []byte("abc"), read(t, r, n.ID, "a.txt"), "the files only, no DIA file")
	require.Positive(t, srv.Jobs("DMS.XMLInsert"), "sent as DMS.XMLInsert")
	require.Zero(t, srv.Jobs("dms.XMLInsert"))
}

// TestXMLErrorFileIsRead (issue 13, item 8): a refused XML job may say why
// only in an XML error file sent as an output stream; the error the client
// reports carries what the file says. A title field the object type lacks
// (a wrong --enaio title field) is refused that way.
func TestXMLErrorFileIsRead(t *testing.T) {
	srv := enaiotest.Start(t, enaiotest.Options{})
	wrong := connect(t, srv, enaio.Config{TitleField: "Titel"})
	_, err := wrong.Mkdir(context.Background(), "c:akten", "A folder")
	require.Error(t, err)
	require.Contains(t, err.Error(), "Feld 'Titel' gibt es im Typ")
}
