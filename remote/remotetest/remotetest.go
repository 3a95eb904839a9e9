// Package remotetest is the conformance suite every Repository passes. A
// backend's test calls Run with a function that returns a repository to test
// (typically a client talking to the backend's protocol test server). Each
// subtest works inside a fresh folder of its own, so the suite also runs
// against a repository that already holds data.
package remotetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dmsfs/dmsfs/remote"
)

// Run runs the whole suite against the repository newRepo returns.
func Run(t *testing.T, newRepo func(t *testing.T) remote.Repository) {
	cases := []struct {
		name string
		fn   func(t *testing.T, s *suite)
	}{
		{"RootAndStat", testRootAndStat},
		{"MkdirAndList", testMkdirAndList},
		{"InsertAndRead", testInsertAndRead},
		{"RangedRead", testRangedRead},
		{"StrangeNames", testStrangeNames},
		{"Replace", testReplace},
		{"StaleTokenConflicts", testStaleToken},
		{"MultiFile", testMultiFile},
		{"Versions", testVersions},
		{"RenameAndMove", testRenameAndMove},
		{"Delete", testDelete},
		{"NotFound", testNotFound},
		{"ConcurrentInserts", testConcurrentInserts},
		{"ConcurrentReplaceOneWins", testConcurrentReplace},
		{"ConcurrentReads", testConcurrentReads},
		{"Fields", testFields},
		{"Changes", testChanges},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			repo := newRepo(t)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			t.Cleanup(cancel)
			root, err := repo.Root(ctx)
			require.NoError(t, err)
			dir, err := repo.Mkdir(ctx, root.ID, fmt.Sprintf("remotetest-%s-%d", c.name, time.Now().UnixNano()))
			require.NoError(t, err)
			c.fn(t, &suite{repo: repo, ctx: ctx, dir: dir.ID, caps: repo.Capabilities()})
		})
	}
}

type suite struct {
	repo remote.Repository
	ctx  context.Context
	dir  remote.ID
	caps remote.Capabilities
}

// Bytes returns n random bytes.
func Bytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// Content wraps b for an upload.
func Content(b []byte) remote.Content {
	return remote.Content{ReaderAt: bytes.NewReader(b), Size: int64(len(b))}
}

func (s *suite) insert(t *testing.T, parent remote.ID, name string, b []byte) remote.Node {
	t.Helper()
	n, err := s.repo.Insert(s.ctx, parent, name, Content(b))
	require.NoError(t, err)
	require.Equal(t, remote.KindDocument, n.Kind)
	require.Equal(t, name, n.Name)
	require.Len(t, n.Files, 1)
	require.Equal(t, int64(len(b)), n.Files[0].Size)
	require.NotEmpty(t, n.Token)
	return n
}

func (s *suite) read(t *testing.T, doc remote.ID, file string, off, length int64) []byte {
	t.Helper()
	rc, err := s.repo.Open(s.ctx, doc, file, off, length)
	require.NoError(t, err)
	defer rc.Close()
	b, err := io.ReadAll(rc)
	require.NoError(t, err)
	return b
}

func (s *suite) names(t *testing.T, folder remote.ID) []string {
	t.Helper()
	kids, err := s.repo.List(s.ctx, folder)
	require.NoError(t, err)
	var names []string
	for _, k := range kids {
		require.Equal(t, folder, k.Parent, "child %q has the wrong parent", k.Name)
		names = append(names, k.Name)
	}
	sort.Strings(names)
	return names
}

func testRootAndStat(t *testing.T, s *suite) {
	root, err := s.repo.Root(s.ctx)
	require.NoError(t, err)
	require.Equal(t, remote.KindFolder, root.Kind)
	require.True(t, root.IsDir())
	n, err := s.repo.Stat(s.ctx, s.dir)
	require.NoError(t, err)
	require.Equal(t, remote.KindFolder, n.Kind)
	require.Equal(t, root.ID, n.Parent)
	require.Empty(t, n.Files)
}

func testMkdirAndList(t *testing.T, s *suite) {
	require.Empty(t, s.names(t, s.dir))
	a, err := s.repo.Mkdir(s.ctx, s.dir, "a")
	require.NoError(t, err)
	require.Equal(t, remote.KindFolder, a.Kind)
	_, err = s.repo.Mkdir(s.ctx, a.ID, "nested")
	require.NoError(t, err)
	s.insert(t, s.dir, "doc.txt", []byte("hello"))
	require.Equal(t, []string{"a", "doc.txt"}, s.names(t, s.dir))
	require.Equal(t, []string{"nested"}, s.names(t, a.ID))

	doc := s.insert(t, a.ID, "inner.bin", nil)
	_, err = s.repo.List(s.ctx, doc.ID)
	require.ErrorIs(t, err, remote.ErrNotFolder)
	_, err = s.repo.Mkdir(s.ctx, doc.ID, "x")
	require.Error(t, err, "mkdir inside a document")
}

func testInsertAndRead(t *testing.T, s *suite) {
	for _, size := range []int{0, 1, 4096, 1<<20 + 17, 3 << 20} {
		b := Bytes(size)
		name := fmt.Sprintf("f%d.bin", size)
		n := s.insert(t, s.dir, name, b)
		require.Equal(t, s.dir, n.Parent)
		require.NotEmpty(t, n.Files[0].ContentID)
		require.Equal(t, b, s.read(t, n.ID, name, 0, -1), "size %d", size)
		st, err := s.repo.Stat(s.ctx, n.ID)
		require.NoError(t, err)
		require.Equal(t, n.Token, st.Token)
		require.Equal(t, n.Files[0].ContentID, st.Files[0].ContentID)
	}
	_, err := s.repo.Insert(s.ctx, s.dir, "", Content([]byte("x")))
	require.ErrorIs(t, err, remote.ErrInvalidName)
}

func testRangedRead(t *testing.T, s *suite) {
	b := Bytes(2<<20 + 5)
	n := s.insert(t, s.dir, "r.bin", b)
	for _, c := range []struct{ off, length int64 }{
		{0, 1}, {0, 4096}, {1 << 20, 4096}, {int64(len(b)) - 10, 10},
		{int64(len(b)) - 10, 100}, {12345, -1}, {int64(len(b)), 10},
	} {
		end := int64(len(b))
		if c.length >= 0 && c.off+c.length < end {
			end = c.off + c.length
		}
		require.Equal(t, b[c.off:end], s.read(t, n.ID, "r.bin", c.off, c.length), "off %d len %d", c.off, c.length)
	}
}

func testStrangeNames(t *testing.T, s *suite) {
	names := []string{"with space.txt", "Ünïcödé – ß.odt", "slash/in name", "..", ".", "100% sure", "日本語.pdf", " lead", "emoji 📄.txt"}
	for _, name := range names {
		s.insert(t, s.dir, name, []byte(name))
	}
	kids, err := s.repo.List(s.ctx, s.dir)
	require.NoError(t, err)
	got := map[string]remote.Node{}
	for _, k := range kids {
		got[k.Name] = k
	}
	for _, name := range names {
		require.Contains(t, got, name)
		require.Equal(t, []byte(name), s.read(t, got[name].ID, name, 0, -1))
	}
}

func testReplace(t *testing.T, s *suite) {
	n := s.insert(t, s.dir, "r.txt", []byte("one"))
	n2, err := s.repo.Replace(s.ctx, n.ID, n.Token, "r.txt", Content([]byte("second")))
	require.NoError(t, err)
	require.Equal(t, n.ID, n2.ID, "a replace keeps the document")
	require.NotEqual(t, n.Token, n2.Token)
	require.NotEqual(t, n.Files[0].ContentID, n2.Files[0].ContentID)
	require.Equal(t, int64(6), n2.Files[0].Size)
	require.Equal(t, []byte("second"), s.read(t, n.ID, "r.txt", 0, -1))
	_, err = s.repo.Replace(s.ctx, n.ID, n2.Token, "nope.txt", Content([]byte("x")))
	require.ErrorIs(t, err, remote.ErrNotFound)
}

func testStaleToken(t *testing.T, s *suite) {
	n := s.insert(t, s.dir, "c.txt", []byte("base"))
	_, err := s.repo.Replace(s.ctx, n.ID, n.Token, "c.txt", Content([]byte("theirs")))
	require.NoError(t, err)
	_, err = s.repo.Replace(s.ctx, n.ID, n.Token, "c.txt", Content([]byte("mine")))
	require.ErrorIs(t, err, remote.ErrConflict)
	require.Equal(t, []byte("theirs"), s.read(t, n.ID, "c.txt", 0, -1), "a conflict changes nothing")
	_, err = s.repo.Rename(s.ctx, n.ID, n.Token, s.dir, "d.txt")
	require.ErrorIs(t, err, remote.ErrConflict)
	require.ErrorIs(t, s.repo.Delete(s.ctx, n.ID, n.Token), remote.ErrConflict)
}

func testMultiFile(t *testing.T, s *suite) {
	n := s.insert(t, s.dir, "main.txt", []byte("main"))
	if !s.caps.MultiFile {
		_, err := s.repo.Append(s.ctx, n.ID, n.Token, "extra.txt", Content([]byte("x")))
		require.ErrorIs(t, err, remote.ErrUnsupported)
		return
	}
	n2, err := s.repo.Append(s.ctx, n.ID, n.Token, "extra.txt", Content([]byte("extra")))
	require.NoError(t, err)
	require.Len(t, n2.Files, 2)
	require.True(t, n2.IsDir())
	require.Equal(t, []byte("extra"), s.read(t, n.ID, "extra.txt", 0, -1))
	require.Equal(t, []byte("main"), s.read(t, n.ID, "main.txt", 0, -1))

	_, err = s.repo.Append(s.ctx, n.ID, n2.Token, "extra.txt", Content([]byte("dup")))
	require.ErrorIs(t, err, remote.ErrExist)

	n3, err := s.repo.Replace(s.ctx, n.ID, n2.Token, "extra.txt", Content([]byte("EXTRA")))
	require.NoError(t, err)
	require.Equal(t, []byte("EXTRA"), s.read(t, n.ID, "extra.txt", 0, -1))
	require.Equal(t, []byte("main"), s.read(t, n.ID, "main.txt", 0, -1), "replace touches one file")
	f3, _ := n3.File("main.txt")
	f2, _ := n2.File("main.txt")
	require.Equal(t, f2.ContentID, f3.ContentID)

	n4, err := s.repo.DeleteFile(s.ctx, n.ID, n3.Token, "main.txt")
	require.NoError(t, err)
	require.Len(t, n4.Files, 1)
	_, err = s.repo.Open(s.ctx, n.ID, "main.txt", 0, -1)
	require.ErrorIs(t, err, remote.ErrNotFound)
	_, err = s.repo.DeleteFile(s.ctx, n.ID, n4.Token, "extra.txt")
	require.Error(t, err, "the last file cannot be removed")
}

func testVersions(t *testing.T, s *suite) {
	n := s.insert(t, s.dir, "v.txt", []byte("v1"))
	if !s.caps.Versions {
		return
	}
	tok := n.Token
	for _, body := range []string{"v2", "version three"} {
		n2, err := s.repo.Replace(s.ctx, n.ID, tok, "v.txt", Content([]byte(body)))
		require.NoError(t, err)
		tok = n2.Token
	}
	// A rename is not a new version of the content.
	n3, err := s.repo.Rename(s.ctx, n.ID, tok, s.dir, "w.txt")
	require.NoError(t, err)
	vs, err := s.repo.Versions(s.ctx, n.ID)
	require.NoError(t, err)
	if s.caps.VersionsOnPublish {
		// Nothing was published: the history is the current state alone.
		require.Len(t, vs, 1)
		rc, err := s.repo.OpenVersion(s.ctx, n.ID, vs[0].N, vs[0].Files[0].Name, 0, -1)
		require.NoError(t, err)
		b, err := io.ReadAll(rc)
		rc.Close()
		require.NoError(t, err)
		require.Equal(t, "version three", string(b))
		require.Equal(t, n3.Files[0].ContentID, vs[0].Files[0].ContentID)
		return
	}
	require.Len(t, vs, 3)
	for i, want := range []string{"v1", "v2", "version three"} {
		require.Greater(t, vs[i].N, 0)
		if i > 0 {
			require.Greater(t, vs[i].N, vs[i-1].N)
			require.False(t, vs[i].Time.Before(vs[i-1].Time))
		}
		require.Len(t, vs[i].Files, 1)
		rc, err := s.repo.OpenVersion(s.ctx, n.ID, vs[i].N, vs[i].Files[0].Name, 0, -1)
		require.NoError(t, err)
		b, err := io.ReadAll(rc)
		rc.Close()
		require.NoError(t, err)
		require.Equal(t, want, string(b))
		require.Equal(t, int64(len(want)), vs[i].Files[0].Size)
	}
	require.Equal(t, n3.Files[0].ContentID, vs[2].Files[0].ContentID)
	_, err = s.repo.OpenVersion(s.ctx, n.ID, vs[2].N+100, "v.txt", 0, -1)
	require.ErrorIs(t, err, remote.ErrNotFound)
}

func testRenameAndMove(t *testing.T, s *suite) {
	sub, err := s.repo.Mkdir(s.ctx, s.dir, "sub")
	require.NoError(t, err)
	n := s.insert(t, s.dir, "a.txt", []byte("abc"))
	r, err := s.repo.Rename(s.ctx, n.ID, n.Token, s.dir, "b.txt")
	require.NoError(t, err)
	require.Equal(t, n.ID, r.ID)
	require.Equal(t, "b.txt", r.Name)
	require.Equal(t, "b.txt", r.Files[0].Name, "the single file follows the document's name")
	require.Equal(t, []byte("abc"), s.read(t, n.ID, "b.txt", 0, -1))

	m, err := s.repo.Rename(s.ctx, n.ID, r.Token, sub.ID, "c.txt")
	require.NoError(t, err)
	require.Equal(t, sub.ID, m.Parent)
	require.Equal(t, []string{"sub"}, s.names(t, s.dir))
	require.Equal(t, []string{"c.txt"}, s.names(t, sub.ID))

	// Folders move with their contents.
	other, err := s.repo.Mkdir(s.ctx, s.dir, "other")
	require.NoError(t, err)
	_, err = s.repo.Rename(s.ctx, sub.ID, sub.Token, other.ID, "moved")
	require.NoError(t, err)
	require.Equal(t, []string{"moved"}, s.names(t, other.ID))
	require.Equal(t, []string{"c.txt"}, s.names(t, sub.ID))

	// …but not below themselves.
	st, err := s.repo.Stat(s.ctx, other.ID)
	require.NoError(t, err)
	_, err = s.repo.Rename(s.ctx, other.ID, st.Token, sub.ID, "loop")
	require.Error(t, err)
}

func testDelete(t *testing.T, s *suite) {
	sub, err := s.repo.Mkdir(s.ctx, s.dir, "sub")
	require.NoError(t, err)
	n := s.insert(t, sub.ID, "x.txt", []byte("x"))
	require.ErrorIs(t, s.repo.Delete(s.ctx, sub.ID, sub.Token), remote.ErrNotEmpty)
	require.NoError(t, s.repo.Delete(s.ctx, n.ID, n.Token))
	_, err = s.repo.Stat(s.ctx, n.ID)
	require.ErrorIs(t, err, remote.ErrNotFound)
	_, err = s.repo.Open(s.ctx, n.ID, "x.txt", 0, -1)
	require.ErrorIs(t, err, remote.ErrNotFound)
	st, err := s.repo.Stat(s.ctx, sub.ID)
	require.NoError(t, err)
	require.NoError(t, s.repo.Delete(s.ctx, sub.ID, st.Token))
	require.Empty(t, s.names(t, s.dir))
}

func testNotFound(t *testing.T, s *suite) {
	missing := remote.ID("999999999")
	_, err := s.repo.Stat(s.ctx, missing)
	require.ErrorIs(t, err, remote.ErrNotFound)
	_, err = s.repo.List(s.ctx, missing)
	require.ErrorIs(t, err, remote.ErrNotFound)
	_, err = s.repo.Open(s.ctx, missing, "x", 0, -1)
	require.ErrorIs(t, err, remote.ErrNotFound)
	_, err = s.repo.Insert(s.ctx, missing, "x", Content(nil))
	require.ErrorIs(t, err, remote.ErrNotFound)
	n := s.insert(t, s.dir, "present.txt", []byte("p"))
	_, err = s.repo.Open(s.ctx, n.ID, "absent.txt", 0, -1)
	require.ErrorIs(t, err, remote.ErrNotFound)
}

func testConcurrentInserts(t *testing.T, s *suite) {
	const writers, each = 8, 5
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				name := fmt.Sprintf("w%d-%d.txt", w, i)
				if _, err := s.repo.Insert(s.ctx, s.dir, name, Content([]byte(name))); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	kids, err := s.repo.List(s.ctx, s.dir)
	require.NoError(t, err)
	require.Len(t, kids, writers*each)
	for _, k := range kids {
		require.Equal(t, []byte(k.Name), s.read(t, k.ID, k.Name, 0, -1))
	}
}

func testConcurrentReplace(t *testing.T, s *suite) {
	n := s.insert(t, s.dir, "race.txt", []byte("base"))
	const writers = 8
	var wg sync.WaitGroup
	var mu sync.Mutex
	var wins, conflicts int
	var winner string
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := fmt.Sprintf("writer %d", w)
			_, err := s.repo.Replace(s.ctx, n.ID, n.Token, "race.txt", Content([]byte(body)))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
				winner = body
			case errors.Is(err, remote.ErrConflict):
				conflicts++
			default:
				t.Errorf("writer %d: %v", w, err)
			}
		}()
	}
	wg.Wait()
	require.Equal(t, 1, wins, "exactly one update based on one token wins")
	require.Equal(t, writers-1, conflicts)
	require.Equal(t, []byte(winner), s.read(t, n.ID, "race.txt", 0, -1))
}

func testConcurrentReads(t *testing.T, s *suite) {
	b := Bytes(1 << 20)
	n := s.insert(t, s.dir, "shared.bin", b)
	var wg sync.WaitGroup
	for r := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			off := int64(r * 100000)
			rc, err := s.repo.Open(s.ctx, n.ID, "shared.bin", off, 50000)
			if err != nil {
				t.Error(err)
				return
			}
			defer rc.Close()
			got, err := io.ReadAll(rc)
			if err != nil || !bytes.Equal(got, b[off:off+50000]) {
				t.Errorf("reader %d: wrong bytes (err %v)", r, err)
			}
		}()
	}
	wg.Wait()
}

// ReadEverything makes the read calls a mount makes on id — Stat, a ranged
// Open of its first file, Versions, Fields (getfattr) — ignoring their
// errors: for fuzzing a client with malformed answers, where only a panic
// is a failure.
func ReadEverything(ctx context.Context, r remote.Repository, id remote.ID) {
	if n, err := r.Stat(ctx, id); err == nil && len(n.Files) > 0 {
		if rc, err := r.Open(ctx, id, n.Files[0].Name, 0, 10); err == nil {
			io.Copy(io.Discard, rc)
			rc.Close()
		}
	}
	_, _ = r.Versions(ctx, id)
	if fr, ok := remote.As[remote.Fields](r); ok {
		_, _ = fr.Fields(ctx, id)
	}
}

// testFields: a repository that keeps fields sets, reads and clears one
// field of a document with its token; the token it returns serves the
// next change, the content stays, and a token from before a change of the
// content is a conflict.
func testFields(t *testing.T, s *suite) {
	fr, ok := remote.As[remote.Fields](s.repo)
	if !ok {
		t.Skip("the repository keeps no fields")
	}
	n := s.insert(t, s.dir, "indexed.txt", []byte("content"))
	name := FieldName(s.ctx, s.repo, n.ID)
	v := "Quarterly report"
	got, err := fr.SetField(s.ctx, n.ID, n.Token, name, &v)
	require.NoError(t, err)
	require.Equal(t, n.Files[0].ContentID, got.Files[0].ContentID, "a field change leaves the content alone")
	fields, err := fr.Fields(s.ctx, n.ID)
	require.NoError(t, err)
	require.Equal(t, v, fields[name])
	w := "Second title"
	got, err = fr.SetField(s.ctx, n.ID, got.Token, name, &w)
	require.NoError(t, err, "the returned token serves the next change")
	fields, err = fr.Fields(s.ctx, n.ID)
	require.NoError(t, err)
	require.Equal(t, w, fields[name])

	changed, err := s.repo.Replace(s.ctx, n.ID, got.Token, n.Files[0].Name, Content([]byte("new content")))
	require.NoError(t, err)
	_, err = fr.SetField(s.ctx, n.ID, got.Token, name, &v)
	require.ErrorIs(t, err, remote.ErrConflict, "a token from before the content changed")
	fields, err = fr.Fields(s.ctx, n.ID)
	require.NoError(t, err)
	require.Equal(t, w, fields[name], "the field stays with the new content")

	cleared, err := fr.SetField(s.ctx, n.ID, changed.Token, name, nil)
	require.NoError(t, err)
	fields, err = fr.Fields(s.ctx, n.ID)
	require.NoError(t, err)
	require.NotContains(t, fields, name, "cleared")
	_, err = fr.Fields(s.ctx, remote.ID("999999999"))
	require.ErrorIs(t, err, remote.ErrNotFound)

	if !s.repo.Capabilities().ListsFields {
		return
	}
	// Listed fields are the fields, and the mtime field round-trips with
	// its content ID.
	mt := "2020-01-02T03:04:05.000000006Z " + cleared.Files[0].ContentID
	kept, err := fr.SetField(s.ctx, n.ID, cleared.Token, remote.MtimeField, &mt)
	require.NoError(t, err)
	st, err := s.repo.Stat(s.ctx, n.ID)
	require.NoError(t, err)
	require.Equal(t, kept.Token, st.Token)
	require.Equal(t, mt, st.Fields[remote.MtimeField], "Stat lists the fields")
	kids, err := s.repo.List(s.ctx, s.dir)
	require.NoError(t, err)
	for _, k := range kids {
		if k.ID == n.ID {
			require.Equal(t, mt, k.Fields[remote.MtimeField], "List lists the fields")
		}
	}
}

// FieldName is a text field the document id may have: the first its
// schema offers, or "title" where any name goes.
func FieldName(ctx context.Context, repo remote.Repository, id remote.ID) string {
	if fn, ok := remote.As[remote.FieldNamer](repo); ok {
		if names, err := fn.FieldNames(ctx, id); err == nil && len(names) > 0 {
			return names[0]
		}
	}
	return "title"
}

// testChanges: a repository that tells changes reports an insert, a
// replace, a rename and a delete after the cursor taken before them, with
// the folder they are in (or a subtree above it); a poll with nothing
// changed reports nothing; the cursor moves on.
func testChanges(t *testing.T, s *suite) {
	ch, ok := remote.As[remote.Changes](s.repo)
	if !ok {
		t.Skip("the repository cannot tell changes")
	}
	start, err := ch.Changes(s.ctx, "", nil)
	require.NoError(t, err)
	require.NotEmpty(t, start.Cursor)
	idle, err := ch.Changes(s.ctx, start.Cursor, nil)
	require.NoError(t, err)
	require.Empty(t, idle.Changed, "nothing changed")
	require.False(t, idle.All)

	touches := func(cs remote.ChangeSet, id remote.ID) bool {
		return cs.All || slices.Contains(cs.Changed, id) || slices.Contains(cs.Subtrees, s.dir)
	}
	inFolder := func(cs remote.ChangeSet) bool {
		if cs.All || slices.Contains(cs.Folders, s.dir) {
			return true
		}
		for _, sub := range cs.Subtrees {
			if sub == s.dir || s.below(t, s.dir, sub) {
				return true
			}
		}
		return false
	}
	cursor := idle.Cursor
	// A new object needs its folder reported; a known one is found where
	// the mount has it.
	step := func(what string, change func() remote.ID) {
		t.Helper()
		id := change()
		cs, err := ch.Changes(s.ctx, cursor, []remote.ID{id})
		require.NoError(t, err, what)
		require.True(t, touches(cs, id), "%s: %+v", what, cs)
		require.True(t, what != "insert" || inFolder(cs), "%s: the folder is reported: %+v", what, cs)
		cursor = cs.Cursor
		again, err := ch.Changes(s.ctx, cursor, nil)
		require.NoError(t, err)
		require.NotContains(t, again.Changed, id, "%s: reported once", what)
		cursor = again.Cursor
	}
	var n remote.Node
	step("insert", func() remote.ID { n = s.insert(t, s.dir, "polled.txt", []byte("one")); return n.ID })
	step("replace", func() remote.ID {
		var err error
		n, err = s.repo.Replace(s.ctx, n.ID, n.Token, n.Files[0].Name, Content([]byte("two")))
		require.NoError(t, err)
		return n.ID
	})
	step("rename", func() remote.ID {
		var err error
		n, err = s.repo.Rename(s.ctx, n.ID, n.Token, s.dir, "renamed.txt")
		require.NoError(t, err)
		return n.ID
	})
	step("delete", func() remote.ID {
		require.NoError(t, s.repo.Delete(s.ctx, n.ID, n.Token))
		return n.ID
	})
}

// below tells whether folder id lies below ancestor.
func (s *suite) below(t *testing.T, id, ancestor remote.ID) bool {
	for i := 0; i < 64 && id != ""; i++ {
		n, err := s.repo.Stat(s.ctx, id)
		if err != nil {
			return false
		}
		if n.Parent == ancestor {
			return true
		}
		id = n.Parent
	}
	return false
}

// PollCost prints what a change poll costs: requests (as count counts
// them) per poll with nothing changed, and per minute at a few intervals.
func PollCost(t *testing.T, r remote.Repository, count func() int) {
	ch, ok := remote.As[remote.Changes](r)
	require.True(t, ok)
	ctx := context.Background()
	cs, err := ch.Changes(ctx, "", nil)
	require.NoError(t, err)
	before := count()
	const polls = 5
	for range polls {
		cs, err = ch.Changes(ctx, cs.Cursor, nil)
		require.NoError(t, err)
	}
	per := float64(count()-before) / polls
	t.Logf("a change poll costs %.1f request(s): %.0f per minute at --poll-interval 15s, %.0f at 2s", per, per*4, per*30)
	require.Greater(t, per, 0.0, "a poll asks the server")
}
