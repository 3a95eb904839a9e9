package cache

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
)

func source(data []byte, calls *atomic.Int64) FetchFunc {
	return func(ctx context.Context, off, n int64) ([]byte, error) {
		calls.Add(1)
		time.Sleep(time.Millisecond)
		end := min(off+n, int64(len(data)))
		return append([]byte(nil), data[off:end]...), nil
	}
}

// fourBlocks is a cache and 3.5 MB of data: four blocks, the last short.
func fourBlocks(t *testing.T) (*Blocks, []byte) {
	b, err := NewBlocks(64<<20, 4)
	require.NoError(t, err)
	t.Cleanup(b.Close)
	return b, bytes.Repeat([]byte("abcdefghij"), 350000)
}

func TestBlocksReadAcrossBlocks(t *testing.T) {
	b, data := fourBlocks(t)
	var calls atomic.Int64
	for _, c := range []struct{ off, n int }{{0, 10}, {BlockSize - 5, 10}, {3 * BlockSize, 500000}, {len(data) - 3, 100}, {len(data), 10}} {
		dest := make([]byte, c.n)
		got, err := b.ReadAt(context.Background(), "k", int64(len(data)), dest, int64(c.off), source(data, &calls))
		require.NoError(t, err)
		want := data[min(c.off, len(data)):min(c.off+c.n, len(data))]
		require.Equal(t, want, dest[:got])
	}
}

func TestBlocksSlice(t *testing.T) {
	b, data := fourBlocks(t)
	var calls atomic.Int64
	for _, c := range []struct {
		off, n int
		ok     bool
	}{{0, BlockSize, true}, {BlockSize, 128 << 10, true}, {BlockSize - 5, 10, false}, {3 * BlockSize, BlockSize, true}, {len(data) - 3, 100, true}, {len(data), 10, false}} {
		got, ok, err := b.Slice(context.Background(), "k", int64(len(data)), int64(c.off), int64(c.n), source(data, &calls))
		require.NoError(t, err)
		require.Equal(t, c.ok, ok, "%+v", c)
		if ok {
			require.True(t, bytes.Equal(data[c.off:min(c.off+c.n, len(data))], got.Data), "%+v", c)
		}
		got.Release()
	}
}

func TestBlocksConcurrentMissesFetchOnce(t *testing.T) {
	b, err := NewBlocks(64<<20, 4)
	require.NoError(t, err)
	defer b.Close()
	data := bytes.Repeat([]byte{7}, BlockSize)
	var calls atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dest := make([]byte, 4096)
			_, err := b.ReadAt(context.Background(), "same", int64(len(data)), dest, 0, source(data, &calls))
			require.NoError(t, err)
		}()
	}
	wg.Wait()
	require.Equal(t, int64(1), calls.Load(), "singleflight")
}

func TestBlocksRejectShortReads(t *testing.T) {
	b, err := NewBlocks(64<<20, 4)
	require.NoError(t, err)
	defer b.Close()
	short := func(ctx context.Context, off, n int64) ([]byte, error) { return make([]byte, n-1), nil }
	_, err = b.ReadAt(context.Background(), "k", 100, make([]byte, 100), 0, short)
	require.ErrorIs(t, err, ErrShortRead)
	failing := func(ctx context.Context, off, n int64) ([]byte, error) { return nil, errors.New("boom") }
	_, err = b.ReadAt(context.Background(), "k2", 100, make([]byte, 100), 0, failing)
	require.ErrorContains(t, err, "boom")
}

func TestBlocksBounded(t *testing.T) {
	b, err := NewBlocks(4*BlockSize, 4)
	require.NoError(t, err)
	defer b.Close()
	data := make([]byte, 32*BlockSize)
	var calls atomic.Int64
	dest := make([]byte, BlockSize)
	for off := 0; off < len(data); off += BlockSize {
		_, err := b.ReadAt(context.Background(), "big", int64(len(data)), dest, int64(off), source(data, &calls))
		require.NoError(t, err)
	}
	require.LessOrEqual(t, b.Used(), int64(4*BlockSize))
}

func TestSpoolJournal(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenSpool(dir)
	require.NoError(t, err)
	key, f, err := s.Create(false)
	require.NoError(t, err)
	_, err = f.WriteString("durable")
	require.NoError(t, err)
	require.NoError(t, s.Commit(f, Record{Key: key, Op: OpInsert, Parent: "1", Name: "a.txt", Size: 7}))
	tkey, tf, err := s.Create(true)
	require.NoError(t, err)
	tf.Close()
	orphanKey, of, err := s.Create(false) // never committed
	require.NoError(t, err)
	of.Close()
	f.Close()

	_, err = OpenSpool(dir)
	require.ErrorContains(t, err, "in use by another dmsfs mount")
	require.NoError(t, s.Close())

	s, err = OpenSpool(dir)
	require.NoError(t, err)
	defer s.Close()
	recs, err := s.Pending()
	require.NoError(t, err)
	require.Len(t, recs, 1)
	require.Equal(t, "a.txt", recs[0].Name)
	b, err := os.ReadFile(s.Path(key))
	require.NoError(t, err)
	require.Equal(t, "durable", string(b))
	_, err = os.Stat(filepath.Join(dir, "spool/temp", tkey))
	require.ErrorIs(t, err, os.ErrNotExist, "temp files do not outlive the mount")
	_, err = os.Stat(s.Path(orphanKey))
	require.ErrorIs(t, err, os.ErrNotExist, "data without a record was never promised")

	s.Remove(key, false, true)
	recs, err = s.Pending()
	require.NoError(t, err)
	require.Empty(t, recs)
	s.Remove("", false, true) // must not touch the spool directories
	_, err = os.Stat(filepath.Join(dir, "spool/data"))
	require.NoError(t, err)
}

func TestSpoolAttrs(t *testing.T) {
	s, err := OpenSpool(t.TempDir())
	require.NoError(t, err)
	defer s.Close()
	_, ok := s.GetAttr("f/1/a")
	require.False(t, ok)
	a := Attr{ContentID: "c1", Mode: 0o600, Mtime: time.Unix(1700000000, 5).UTC()}
	require.NoError(t, s.SetAttr("f/1/a", a))
	got, ok := s.GetAttr("f/1/a")
	require.True(t, ok)
	require.Equal(t, a, got)
	s.DeleteAttr("f/1/a")
	_, ok = s.GetAttr("f/1/a")
	require.False(t, ok)
}

// A small file's record holds its bytes, so that its data file needs no
// fsync: after a crash that lost the data file's pages, the record still
// has what the close promised. A big file's record does not; a new
// record replaces the old bytes, and a finished upload drops them.
func TestSpoolInlineRecords(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenSpool(dir)
	require.NoError(t, err)
	key, f, err := s.Create(false)
	require.NoError(t, err)
	_, err = f.WriteString("first")
	require.NoError(t, err)
	require.NoError(t, s.Commit(f, Record{Key: key, Op: OpInsert, Parent: "1", Name: "a.txt", Size: 5}))
	_, err = f.WriteAt([]byte("second"), 0)
	require.NoError(t, err)
	require.NoError(t, s.Commit(f, Record{Key: key, Op: OpInsert, Parent: "1", Name: "a.txt", Size: 6}))
	bigKey, bf, err := s.Create(false)
	require.NoError(t, err)
	big := bytes.Repeat([]byte("b"), InlineMax+1)
	_, err = bf.Write(big)
	require.NoError(t, err)
	require.NoError(t, s.Commit(bf, Record{Key: bigKey, Op: OpInsert, Parent: "1", Name: "big", Size: int64(len(big))}))
	f.Close()
	bf.Close()
	require.NoError(t, os.Truncate(s.Path(key), 0)) // the crash lost the unsynced pages
	require.NoError(t, s.Close())

	s, err = OpenSpool(dir)
	require.NoError(t, err)
	defer s.Close()
	got, ok := s.Inline(key)
	require.True(t, ok)
	require.Equal(t, "second", string(got))
	_, ok = s.Inline(bigKey)
	require.False(t, ok, "a big file's data file was fsync'd instead")
	require.NoError(t, s.Finish(key, "", nil))
	_, ok = s.Inline(key)
	require.False(t, ok)
}

// crashCopy copies a spool's files as a crash would leave them: what was
// written, whether or not the process closed anything.
func crashCopy(t *testing.T, from string, log []byte) string {
	t.Helper()
	to := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(to, "spool/data"), 0o700))
	db, err := os.ReadFile(filepath.Join(from, "state.db"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(to, "state.db"), db, 0o600))
	if log == nil {
		log, err = os.ReadFile(filepath.Join(from, "journal.log"))
		require.NoError(t, err)
	}
	require.NoError(t, os.WriteFile(filepath.Join(to, "journal.log"), log, 0o600))
	entries, err := os.ReadDir(filepath.Join(from, "spool/data"))
	require.NoError(t, err)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(from, "spool/data", e.Name()))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(to, "spool/data", e.Name()), b, 0o600))
	}
	return to
}

// A commit is one append to the commit log, not a state.db transaction;
// a crash before anything folded it finds it in the log, a torn last
// entry is left out, and a record forgotten after a fold stays forgotten
// though the log's cut never reached the disk.
func TestSpoolCommitLog(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenSpool(dir)
	require.NoError(t, err)
	defer s.Close()
	commit := func(name, content string) string {
		key, f, err := s.Create(false)
		require.NoError(t, err)
		defer f.Close()
		_, err = f.WriteString(content)
		require.NoError(t, err)
		require.NoError(t, s.Commit(f, Record{Key: key, Op: OpInsert, Parent: "1", Name: name, Size: int64(len(content))}))
		return key
	}
	a := commit("a.txt", "alpha")
	commit("b.txt", "beta")
	require.NoError(t, s.db.View(func(tx *bolt.Tx) error {
		require.Nil(t, tx.Bucket(bucketJournal).Get([]byte(a)), "no state.db transaction per commit")
		return nil
	}))
	recs, err := s.Pending()
	require.NoError(t, err)
	require.Len(t, recs, 2)
	got, ok := s.Inline(a)
	require.True(t, ok)
	require.Equal(t, "alpha", string(got))

	before := crashCopy(t, dir, nil)
	torn, err := os.ReadFile(filepath.Join(dir, "journal.log"))
	require.NoError(t, err)
	torn = append(torn, torn[:len(torn)/2]...) // a third append, cut short
	tornDir := crashCopy(t, dir, torn)

	logBefore, err := os.ReadFile(filepath.Join(dir, "journal.log"))
	require.NoError(t, err)
	require.NoError(t, s.Finish(a, "", nil)) // folds both, forgets a
	after := crashCopy(t, dir, logBefore)    // the log's cut was lost

	for _, c := range []struct {
		name string
		dir  string
		want []string
	}{{"crash before the fold", before, []string{"a.txt", "b.txt"}}, {"torn last entry", tornDir, []string{"a.txt", "b.txt"}}, {"forgotten after the fold", after, []string{"b.txt"}}} {
		t.Run(c.name, func(t *testing.T) {
			r, err := OpenSpool(c.dir)
			require.NoError(t, err)
			defer r.Close()
			recs, err := r.Pending()
			require.NoError(t, err)
			var names []string
			for _, rec := range recs {
				names = append(names, rec.Name)
				got, ok := r.Inline(rec.Key)
				require.True(t, ok)
				require.Equal(t, map[string]string{"a.txt": "alpha", "b.txt": "beta"}[rec.Name], string(got))
			}
			require.ElementsMatch(t, c.want, names)
		})
	}
}

// TestSpoolCreateTakesFilesMadeAhead: Create hands out empty files made
// ahead (renamed into place), distinct and writable, in the durable or
// the temp area as asked, more of them than wait at once; Close removes
// those still waiting.
func TestSpoolCreateTakesFilesMadeAhead(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenSpool(dir)
	require.NoError(t, err)
	seen := map[string]bool{}
	for i := range 3 * readyAhead {
		temp := i%5 == 0
		key, f, err := s.Create(temp)
		require.NoError(t, err)
		require.False(t, seen[key])
		seen[key] = true
		st, err := f.Stat()
		require.NoError(t, err)
		require.Zero(t, st.Size(), "empty")
		_, err = f.WriteString(key)
		require.NoError(t, err)
		require.NoError(t, f.Close())
		got, err := os.ReadFile(s.path(key, temp))
		require.NoError(t, err, "the file is where its key says")
		require.Equal(t, key, string(got))
	}
	require.NoError(t, s.Close())
	left, err := filepath.Glob(filepath.Join(dir, "spool/temp/ready-*"))
	require.NoError(t, err)
	require.Empty(t, left)
	_, _, err = s.Create(false) // after Close: no panic, a plain create
	require.NoError(t, err)
}
