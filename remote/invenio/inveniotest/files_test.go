package inveniotest_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dmsfs/dmsfs/remote/invenio/inveniotest"
)

// call sends one request as a plain HTTP client would and decodes a JSON
// answer into out (when not nil); it returns the status.
func call(t *testing.T, method, url string, body any, out any) int {
	t.Helper()
	var rd io.Reader = http.NoBody
	ctype := "application/json"
	switch b := body.(type) {
	case nil:
	case []byte:
		rd, ctype = bytes.NewReader(b), "application/octet-stream"
	default:
		raw, err := json.Marshal(b)
		require.NoError(t, err)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, url, rd)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+inveniotest.TestToken)
	req.Header.Set("Content-Type", ctype)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	if out != nil {
		require.NoError(t, json.NewDecoder(resp.Body).Decode(out), "%s %s", method, url)
	}
	return resp.StatusCode
}

type entry struct {
	Key   string
	Links struct {
		Self, Content, Commit string
		Parts                 []struct {
			Part       int
			URL        string
			Expiration time.Time
		}
	}
}

// TestFileEndpointsAsUpstream pins what upstream's file endpoints do that a
// client must live with (issue 13, item 5): keys keep a raw "/" in links;
// every draft entry has a commit link; a content PUT to a key never
// initialised and a commit of content never sent answer 500; a local
// multipart part PUT answers with the whole entry; part URLs live 14 days;
// only parts before the last must have part_size.
func TestFileEndpointsAsUpstream(t *testing.T) {
	_, base := inveniotest.Start(t, inveniotest.Options{})
	var draft struct {
		Links struct{ Files string }
	}
	require.Equal(t, http.StatusCreated, call(t, "POST", base+"/api/records", map[string]any{"metadata": map[string]any{"title": "T"}}, &draft))
	var list struct{ Entries []entry }
	require.Equal(t, http.StatusCreated, call(t, "POST", draft.Links.Files, []any{
		map[string]any{"key": "dir/a.txt", "size": 3},
		map[string]any{"key": "big.bin", "size": 8, "transfer": map[string]any{"type": "M", "parts": 2, "part_size": 5}},
	}, &list))
	got := map[string]entry{}
	for _, e := range list.Entries {
		got[e.Key] = e
	}
	a, big := got["dir/a.txt"], got["big.bin"]
	require.True(t, strings.HasSuffix(a.Links.Content, "/files/dir/a.txt/content"), a.Links.Content)
	require.NotEmpty(t, a.Links.Commit)

	require.Equal(t, http.StatusInternalServerError, call(t, "POST", a.Links.Commit, map[string]any{}, nil), "commit before content")
	never := strings.Replace(a.Links.Content, "/dir/a.txt/", "/never.txt/", 1)
	require.Equal(t, http.StatusInternalServerError, call(t, "PUT", never, []byte("x"), nil), "content for a key never initialised")
	require.Equal(t, http.StatusOK, call(t, "PUT", a.Links.Content, []byte("abc"), nil))
	var done entry
	require.Equal(t, http.StatusOK, call(t, "POST", a.Links.Commit, map[string]any{}, &done))
	require.NotEmpty(t, done.Links.Commit, "committed entries keep the link")

	require.Len(t, big.Links.Parts, 2)
	require.WithinDuration(t, time.Now().Add(14*24*time.Hour), big.Links.Parts[0].Expiration, time.Hour)
	require.Equal(t, http.StatusBadRequest, call(t, "PUT", big.Links.Parts[0].URL, []byte("abc"), nil), "a part before the last must be part_size")
	var part entry
	require.Equal(t, http.StatusOK, call(t, "PUT", big.Links.Parts[0].URL, []byte("01234"), &part))
	require.Equal(t, "big.bin", part.Key, "the part PUT answers with the entry")
	require.Equal(t, http.StatusOK, call(t, "PUT", big.Links.Parts[1].URL, []byte("56"), nil), "the last part is not checked")
}
