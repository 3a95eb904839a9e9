package axelor_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	dfs "github.com/dmsfs/dmsfs/fs"
	"github.com/dmsfs/dmsfs/fs/fstest"
	"github.com/dmsfs/dmsfs/remote/axelor/axelortest"
)

// serverAttachments asks the server itself what record model/id has
// attached: GET /ws/dms/attachments/<model>/<id>, file names by id.
func serverAttachments(t *testing.T, url, model, id string) map[string]string {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	hc := &http.Client{Jar: jar}
	login, err := json.Marshal(map[string]string{"username": testUser, "password": testPassword})
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, url+"/callback", bytes.NewReader(login))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Requested-With", "XMLHttpRequest")
	resp, err := hc.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	req, err = http.NewRequest(http.MethodGet, url+"/ws/dms/attachments/"+model+"/"+id, nil)
	require.NoError(t, err)
	req.Header.Set("X-Requested-With", "XMLHttpRequest")
	resp, err = hc.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var env struct {
		Status int `json:"status"`
		Data   []struct {
			ID       json.Number `json:"id"`
			FileName string      `json:"fileName"`
		} `json:"data"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&env))
	require.Zero(t, env.Status)
	out := map[string]string{}
	for _, d := range env.Data {
		out[d.ID.String()] = d.FileName
	}
	return out
}

// TestRecordAttachments: a business record's attachments under
// /.attachments/<model>/<id>/ — cp in, cat out, mv, overwrite (the old
// content under .versions/), rm, each checked through the server's
// attachments service; hidden from the root's listing and from the DMS
// tree; models and records the server does not know are ENOENT.
func TestRecordAttachments(t *testing.T) {
	_, url := newServer(t, axelortest.Options{})
	e := fstest.Mount(t, newClient(t, url), dfs.Options{})
	const model, rec = "com.axelor.sale.db.Order", "42"
	dir := e.Path(filepath.Join(".attachments", model, rec))

	st, err := os.Stat(dir)
	require.NoError(t, err, "any record is reachable, with attachments or without")
	require.True(t, st.IsDir())
	src := filepath.Join(t.TempDir(), "report.pdf")
	report := []byte("%PDF-1.4 the report\n")
	require.NoError(t, os.WriteFile(src, report, 0o644))
	e.Run("cp", src, dir+"/")
	got := serverAttachments(t, url, model, rec)
	require.Len(t, got, 1)
	var attID string
	for id, name := range got {
		attID = id
		require.Equal(t, "report.pdf", name)
	}
	require.Equal(t, string(report), e.Run("cat", dir+"/report.pdf"))

	require.Equal(t, []string{model}, e.Names(".attachments"), "the models that have attachments")
	require.Equal(t, []string{rec}, e.Names(".attachments/"+model), "the records that have some")
	require.NotContains(t, e.Names("."), ".attachments", "hidden from the root's listing")
	require.Empty(t, e.Names("."), "the record's home folder is not in the DMS tree")
	require.NotContains(t, e.Run("find", e.Mnt), "report.pdf", "find does not walk into the view")

	e.Run("mv", dir+"/report.pdf", dir+"/invoice.pdf")
	require.Equal(t, map[string]string{attID: "invoice.pdf"}, serverAttachments(t, url, model, rec), "renamed, the same DMSFile")

	require.NoError(t, os.WriteFile(dir+"/invoice.pdf", []byte("%PDF-1.4 corrected\n"), 0o644))
	require.Equal(t, "%PDF-1.4 corrected\n", e.Run("cat", dir+"/invoice.pdf"))
	require.Equal(t, map[string]string{attID: "invoice.pdf"}, serverAttachments(t, url, model, rec), "replaced in place")
	old := e.Run("bash", "-c", "cat "+dir+"/.versions/invoice.pdf/*")
	require.Contains(t, old, "the report", "the first content is kept as a version")

	e.Run("rm", dir+"/invoice.pdf")
	e.Settle() // the deletion waits out the unlink grace
	require.Empty(t, serverAttachments(t, url, model, rec))

	for _, p := range []string{".attachments/com.example.NoSuchModel", ".attachments/" + model + "/999", ".attachments/" + model + "/x"} {
		_, err := os.Stat(e.Path(p))
		require.ErrorIs(t, err, os.ErrNotExist, p)
	}
	err = os.WriteFile(e.Path(".attachments/"+model+"/loose.pdf"), []byte("x"), 0o644)
	require.ErrorIs(t, err, syscall.EACCES, "files are attached to a record, not to a model")
	err = os.Mkdir(dir+"/sub", 0o755)
	require.Error(t, err, "attachments are files")
	out, err := exec.Command("mv", e.Path(".attachments"), e.Path("elsewhere")).CombinedOutput()
	require.Error(t, err, "the view stays: %s", out)
	require.False(t, strings.Contains(strings.Join(e.Names("."), ","), "elsewhere"))
	_ = context.Background
}
