package upload_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dmsfs/dmsfs/cache"
	"github.com/dmsfs/dmsfs/fs/upload"
	"github.com/dmsfs/dmsfs/remote"
	"github.com/dmsfs/dmsfs/remote/embedded"
	"github.com/dmsfs/dmsfs/remote/remotetest"
)

// lossyRepo is a repository that keeps no checksums (as Axelor), whose
// replace can lose its answer after the change is made, and whose
// downloads can fail.
type lossyRepo struct {
	remote.Repository
	loseReplace bool // the next Replace is applied, its answer lost
	failOpen    bool // downloads fail as a cut connection does
}

func (r *lossyRepo) Stat(ctx context.Context, id remote.ID) (remote.Node, error) {
	n, err := r.Repository.Stat(ctx, id)
	for i := range n.Files {
		n.Files[i].SHA256 = ""
	}
	return n, err
}

func (r *lossyRepo) Replace(ctx context.Context, doc remote.ID, token, file string, c remote.Content) (remote.Node, error) {
	n, err := r.Repository.Replace(ctx, doc, token, file, c)
	if err == nil && r.loseReplace {
		r.loseReplace = false
		return remote.Node{}, remote.ErrUnavailable
	}
	return n, err
}

func (r *lossyRepo) Open(ctx context.Context, id remote.ID, file string, off, n int64) (io.ReadCloser, error) {
	if r.failOpen {
		return nil, remote.ErrUnavailable
	}
	return r.Repository.Open(ctx, id, file, off, n)
}

// TestALostAnswerIsNoConflictWhenTheBytesCannotBeReadBack: a save whose
// answer was lost after the server applied it is tried again; the retry
// finds the document moved on and must compare its bytes with the
// server's. When that read fails too, the save is tried later, never
// taken for another client's change: that made a conflict copy of the
// writer's own save (TestFaults, Axelor, cut-body at 50 %).
func TestALostAnswerIsNoConflictWhenTheBytesCannotBeReadBack(t *testing.T) {
	ctx := context.Background()
	emb, err := embedded.Open(t.TempDir(), embedded.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { emb.Close() })
	repo := &lossyRepo{Repository: emb}
	root, err := repo.Root(ctx)
	require.NoError(t, err)
	doc, err := repo.Insert(ctx, root.ID, "a.txt", remotetest.Content([]byte("one")))
	require.NoError(t, err)
	s := &upload.Sender{Repo: repo, Log: slog.New(slog.DiscardHandler), Now: time.Now}
	mine := []byte("mine, saved once")
	req := upload.Request{
		Rec: cache.Record{Op: cache.OpReplace, Path: "a.txt", Parent: root.ID, Doc: doc.ID, Token: doc.Token,
			Name: "a.txt", Base: doc.Files[0].ContentID, Size: int64(len(mine))},
		Data: bytes.NewReader(mine),
	}

	repo.loseReplace = true
	_, err = s.Send(ctx, req)
	require.ErrorIs(t, err, remote.ErrUnavailable, "the answer was lost")

	repo.failOpen = true
	_, err = s.Send(ctx, req)
	require.ErrorIs(t, err, remote.ErrUnavailable, "the server's bytes could not be compared: later")

	repo.failOpen = false
	res, err := s.Send(ctx, req)
	require.NoError(t, err)
	require.Empty(t, res.Conflict, "the save is the writer's own")
	kids, err := repo.List(ctx, root.ID)
	require.NoError(t, err)
	require.Len(t, kids, 1, "no conflict copy")
	vs, err := repo.Versions(ctx, doc.ID)
	require.NoError(t, err)
	require.Len(t, vs, 2, "one save, one version")
}
