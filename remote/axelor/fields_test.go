package axelor_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dmsfs/dmsfs/remote"
	"github.com/dmsfs/dmsfs/remote/axelor"
	"github.com/dmsfs/dmsfs/remote/axelor/axelortest"
	"github.com/dmsfs/dmsfs/remote/remotetest"
)

// TestTagsAndDescription: a document's tags are DMSFileTag rows, made once
// per name and shared; they read back joined by ", " whether written so or
// as a JSON array; the description stays with the document across a new
// content; a name outside Axelor's schema is unsupported.
func TestTagsAndDescription(t *testing.T) {
	ctx := context.Background()
	srv, url := newServer(t, axelortest.Options{})
	c := newClient(t, url)
	a, err := c.Insert(ctx, axelor.RootID, "a.txt", remotetest.Content([]byte("a")))
	require.NoError(t, err)
	b, err := c.Insert(ctx, axelor.RootID, "b.txt", remotetest.Content([]byte("b")))
	require.NoError(t, err)
	set := func(id remote.ID, token, name, v string) string {
		n, err := c.SetField(ctx, id, token, name, &v)
		require.NoError(t, err)
		return n.Token
	}
	ta := set(a.ID, a.Token, "tags", "finance, urgent")
	set(b.ID, b.Token, "tags", `["urgent"]`)
	require.Equal(t, 2, srv.Requests("PUT /ws/rest/com.axelor.dms.db.DMSFileTag"), "one tag row per name")
	fa, err := c.Fields(ctx, a.ID)
	require.NoError(t, err)
	require.Equal(t, "finance, urgent", fa["tags"])
	fb, err := c.Fields(ctx, b.ID)
	require.NoError(t, err)
	require.Equal(t, "urgent", fb["tags"])

	ta = set(a.ID, ta, "description", "Q1 figures")
	n, err := c.Replace(ctx, a.ID, ta, "a.txt", remotetest.Content([]byte("a, again")))
	require.NoError(t, err)
	fa, err = c.Fields(ctx, a.ID)
	require.NoError(t, err)
	require.Equal(t, "Q1 figures", fa["description"], "kept with the new content")
	v := "x"
	_, err = c.SetField(ctx, a.ID, n.Token, "colour", &v)
	require.ErrorContains(t, err, "not supported")
}
