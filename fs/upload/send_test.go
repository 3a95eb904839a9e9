package upload_test

import (
	"bytes"
	"context"
	"fmt"
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
	loseInsert  bool // the next Insert is applied, its answer lost
	failOpen    bool // downloads fail as a cut connection does
}

func (r *lossyRepo) Insert(ctx context.Context, parent remote.ID, name string, c remote.Content) (remote.Node, error) {
	n, err := r.Repository.Insert(ctx, parent, name, c)
	if err == nil && r.loseInsert {
		r.loseInsert = false
		return remote.Node{}, remote.ErrUnavailable
	}
	return n, err
}

func (r *lossyRepo) List(ctx context.Context, id remote.ID) ([]remote.Node, error) {
	kids, err := r.Repository.List(ctx, id)
	for _, k := range kids {
		noSums(k.Files)
	}
	return kids, err
}

func (r *lossyRepo) Stat(ctx context.Context, id remote.ID) (remote.Node, error) {
	n, err := r.Repository.Stat(ctx, id)
	noSums(n.Files)
	return n, err
}

// noSums drops the checksums, as a repository that keeps none.
func noSums(files []remote.File) {
	for i := range files {
		files[i].SHA256 = ""
	}
}

func (r *lossyRepo) Versions(ctx context.Context, id remote.ID) ([]remote.Version, error) {
	vs, err := r.Repository.Versions(ctx, id)
	for _, v := range vs {
		noSums(v.Files)
	}
	return vs, err
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

// lossySender is a Sender over a lossyRepo holding one document "a.txt"
// with content "one", and the request that replaces it with data.
func lossySender(t *testing.T) (*upload.Sender, *lossyRepo, remote.Node, func(data []byte) upload.Request) {
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
	req := func(data []byte) upload.Request {
		return upload.Request{
			Rec: cache.Record{Op: cache.OpReplace, Path: "a.txt", Parent: root.ID, Doc: doc.ID, Token: doc.Token,
				Name: "a.txt", Base: doc.Files[0].ContentID, Size: int64(len(data))},
			Data: bytes.NewReader(data),
		}
	}
	return s, repo, doc, req
}

// loseOneSave sends data with its answer lost after the server took
// it, and returns the document as the server then has it.
func loseOneSave(t *testing.T, s *upload.Sender, repo *lossyRepo, doc remote.Node, req upload.Request) remote.Node {
	t.Helper()
	ctx := context.Background()
	repo.loseReplace = true
	_, err := s.Send(ctx, req)
	require.ErrorIs(t, err, remote.ErrUnavailable, "the answer was lost")
	cur, err := repo.Stat(ctx, doc.ID)
	require.NoError(t, err)
	return cur
}

// serverContent is doc's file a.txt as the server has it.
func serverContent(t *testing.T, repo remote.Repository, doc remote.Node) string {
	t.Helper()
	rc, err := repo.Open(context.Background(), doc.ID, "a.txt", 0, -1)
	require.NoError(t, err)
	defer rc.Close()
	got, err := io.ReadAll(rc)
	require.NoError(t, err)
	return string(got)
}

// requireNoConflictCopy checks that doc is alone in its folder and has
// versions versions.
func requireNoConflictCopy(t *testing.T, repo remote.Repository, doc remote.Node, versions int) {
	ctx := context.Background()
	kids, err := repo.List(ctx, doc.Parent)
	require.NoError(t, err)
	require.Len(t, kids, 1, "no conflict copy")
	vs, err := repo.Versions(ctx, doc.ID)
	require.NoError(t, err)
	require.Len(t, vs, versions, "one save, one version")
}

// TestALostAnswerIsNoConflictWhenTheBytesCannotBeReadBack: a save whose
// answer was lost after the server applied it is tried again; the retry
// finds the document moved on and must compare its bytes with the
// server's. When that read fails too, the save is tried later, never
// taken for another client's change: that made a conflict copy of the
// writer's own save (TestFaults, Axelor, cut-body at 50 %).
func TestALostAnswerIsNoConflictWhenTheBytesCannotBeReadBack(t *testing.T) {
	ctx := context.Background()
	s, repo, doc, req := lossySender(t)
	mine := req([]byte("mine, saved once"))

	repo.loseReplace = true
	_, err := s.Send(ctx, mine)
	require.ErrorIs(t, err, remote.ErrUnavailable, "the answer was lost")

	repo.failOpen = true
	_, err = s.Send(ctx, mine)
	require.ErrorIs(t, err, remote.ErrUnavailable, "the server's bytes could not be compared: later")

	repo.failOpen = false
	res, err := s.Send(ctx, mine)
	require.NoError(t, err)
	require.Empty(t, res.Conflict, "the save is the writer's own")
	requireNoConflictCopy(t, repo, doc, 2)
}

// TestANewerSaveFollowsAnEarlierOneWhoseAnswerWasLost: a save's answer
// is lost after the server applied it, and before it is tried again the
// file is saved anew (vim's save by rename took over the document with
// the view the mount had). The newer save finds the document moved on,
// to the earlier save's bytes: its own, not another client's, so it
// follows it instead of becoming a conflict copy (TestFaults, Axelor,
// cut-body at 50 %, a/f01.bin).
func TestANewerSaveFollowsAnEarlierOneWhoseAnswerWasLost(t *testing.T) {
	ctx := context.Background()
	s, repo, doc, req := lossySender(t)

	repo.loseReplace = true
	_, err := s.Send(ctx, req([]byte("first save")))
	require.ErrorIs(t, err, remote.ErrUnavailable, "the answer was lost")

	newer := req([]byte("second save, longer"))
	repo.failOpen = true
	_, err = s.Send(ctx, newer)
	require.ErrorIs(t, err, remote.ErrUnavailable, "whose bytes the server has could not be told: later")

	repo.failOpen = false
	res, err := s.Send(ctx, newer)
	require.NoError(t, err)
	require.Empty(t, res.Conflict)
	requireNoConflictCopy(t, repo, doc, 3)
	require.Equal(t, "second save, longer", serverContent(t, repo, doc))

	// Another client's save stays a conflict.
	cur, err := repo.Stat(ctx, doc.ID)
	require.NoError(t, err)
	_, err = repo.Replace(ctx, doc.ID, cur.Token, "a.txt", remotetest.Content([]byte("theirs")))
	require.NoError(t, err)
	stale := req([]byte("third save"))
	stale.Rec.Token, stale.Rec.Base = cur.Token, cur.Files[0].ContentID
	res, err = s.Send(ctx, stale)
	require.NoError(t, err)
	require.NotEmpty(t, res.Conflict, "someone else's save is a conflict")
}

// TestASaveEndingInANewDocumentWhoseAnswerWasLostMakesOne: a save that
// ends in a new document (a conflict copy beside another client's save;
// the document again, after another client deleted it) loses the
// insert's answer. The retry finds the document that insert made, by
// its name and bytes, instead of making a second one.
func TestASaveEndingInANewDocumentWhoseAnswerWasLostMakesOne(t *testing.T) {
	for _, tc := range []struct {
		name  string
		other func(t *testing.T, repo remote.Repository, doc remote.Node)
		want  func(doc remote.Node, res upload.Result) []string
	}{
		{"conflict copy", func(t *testing.T, repo remote.Repository, doc remote.Node) {
			_, err := repo.Replace(context.Background(), doc.ID, doc.Token, "a.txt", remotetest.Content([]byte("theirs")))
			require.NoError(t, err)
		}, func(doc remote.Node, res upload.Result) []string { return []string{"a.txt", res.Conflict} }},
		{"deleted on the server", func(t *testing.T, repo remote.Repository, doc remote.Node) {
			require.NoError(t, repo.Delete(context.Background(), doc.ID, doc.Token))
		}, func(remote.Node, upload.Result) []string { return []string{"a.txt"} }},
	} {
		for _, restart := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s, restart %v", tc.name, restart), func(t *testing.T) {
				ctx := context.Background()
				s, repo, doc, req := lossySender(t)
				dir := t.TempDir()
				s.Notes = openNotes(t, dir)
				tc.other(t, repo, doc)
				repo.loseInsert = true
				_, err := s.Send(ctx, req([]byte("mine")))
				require.ErrorIs(t, err, remote.ErrUnavailable, "the answer was lost")
				require.False(t, repo.loseInsert, "the save ended in an insert")
				retry := req([]byte("mine"))
				if restart {
					s = restarted(t, s, dir)
					retry.Replay = true
				}
				res, err := s.Send(ctx, retry)
				require.NoError(t, err)
				kids, err := repo.List(ctx, doc.Parent)
				require.NoError(t, err)
				var names []string
				for _, k := range kids {
					names = append(names, k.Name)
				}
				require.ElementsMatch(t, tc.want(doc, res), names, "one new document, not two")
			})
		}
	}
}

// openNotes is a spool in dir, whose notes keep a Sender's across a
// restart.
func openNotes(t *testing.T, dir string) *cache.Spool {
	t.Helper()
	spool, err := cache.OpenSpool(dir)
	require.NoError(t, err)
	t.Cleanup(func() { spool.Close() })
	return spool
}

// restarted is a new Sender of s's repository over the spool in dir,
// as the next mount has after a crash: only what the spool kept.
func restarted(t *testing.T, s *upload.Sender, dir string) *upload.Sender {
	t.Helper()
	require.NoError(t, s.Notes.(*cache.Spool).Close())
	next := &upload.Sender{Repo: s.Repo, Log: s.Log, Now: s.Now, Notes: openNotes(t, dir)}
	require.NoError(t, next.Load())
	return next
}

// TestASaveAfterALostOneIsItsNextVersionAfterARestart: a save's answer
// was lost after the server took it, a newer save was queued, and the
// mount stopped (a crash) before either was settled. The next mount's
// replay of the newer save knows the document's content as this mount's
// own lost save: the next version, not a conflict copy of it.
func TestASaveAfterALostOneIsItsNextVersionAfterARestart(t *testing.T) {
	ctx := context.Background()
	s, repo, doc, req := lossySender(t)
	dir := t.TempDir()
	s.Notes = openNotes(t, dir)
	loseOneSave(t, s, repo, doc, req([]byte("first save")))

	s = restarted(t, s, dir)
	newer := req([]byte("second save, longer"))
	newer.Replay = true
	res, err := s.Send(ctx, newer)
	require.NoError(t, err)
	require.Empty(t, res.Conflict, "the mount's own earlier save, not another client's")
	requireNoConflictCopy(t, repo, doc, 3)
	require.Equal(t, "second save, longer", serverContent(t, repo, doc))
	notes, err := s.Notes.Notes()
	require.NoError(t, err)
	require.Empty(t, notes, "settled: nothing left to remember")
}

// TestTheSameBytesAgainAfterALostAnswerMakeNoVersion: a save whose
// answer was lost reached the server; a later save of the very same
// bytes (vim's save after the failed close), sent with a token fresh
// enough to be taken, makes no second version of them.
func TestTheSameBytesAgainAfterALostAnswerMakeNoVersion(t *testing.T) {
	ctx := context.Background()
	s, repo, doc, req := lossySender(t)
	cur := loseOneSave(t, s, repo, doc, req([]byte("mine")))
	again := req([]byte("mine"))
	again.Rec.Token = cur.Token // learnt from a listing since
	res, err := s.Send(ctx, again)
	require.NoError(t, err)
	require.Empty(t, res.Conflict)
	requireNoConflictCopy(t, repo, doc, 2)
}

// TestAnotherClientsSaveOfTheBaseBytesAfterALostAnswerIsAConflict: a
// save whose answer was lost reached the server; another client then
// saved the bytes the file started from (an undo, a restore). The
// document holds the base's content again, but not the base's version:
// the retry of a newer content goes beside it as a conflict copy
// (reference model with lost answers, seed 1796664677738397422). So too
// when the other client saved other bytes first (seed
// 1796679882720342644, with restarts in the model).
func TestAnotherClientsSaveOfTheBaseBytesAfterALostAnswerIsAConflict(t *testing.T) {
	ctx := context.Background()
	for _, theirs := range [][]string{{"one"}, {"theirs", "one"}} {
		s, repo, doc, req := lossySender(t)
		cur := loseOneSave(t, s, repo, doc, req([]byte("mine")))
		for _, content := range theirs {
			n, err := repo.Replace(ctx, doc.ID, cur.Token, "a.txt", remotetest.Content([]byte(content)))
			require.NoError(t, err)
			cur = n
		}

		res, err := s.Send(ctx, req([]byte("mine, and more")))
		require.NoError(t, err)
		require.NotEmpty(t, res.Conflict, "the other client's saves %q are kept, the newer content beside them", theirs)
		require.Equal(t, "one", serverContent(t, repo, doc))
	}

	// With no lost answer, a save of other bytes by another client
	// that leaves this file's bytes as they were is no conflict.
	s2, repo2, doc2, req2 := lossySender(t)
	_, err := repo2.Replace(ctx, doc2.ID, doc2.Token, "a.txt", remotetest.Content([]byte("one")))
	require.NoError(t, err)
	res, err := s2.Send(ctx, req2([]byte("mine")))
	require.NoError(t, err)
	require.Empty(t, res.Conflict)
}
