package upload

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dmsfs/dmsfs/cache"
	"github.com/dmsfs/dmsfs/remote"
)

// Sender performs uploads against a repository.
type Sender struct {
	Repo remote.Repository
	Log  *slog.Logger
	Now  func() time.Time
	// Notes keeps unsure and lostInserts across restarts (the spool);
	// nil keeps them in memory only. Read them back with Load.
	Notes Notebook

	// mu is taken before the Notebook's own locks (a note is written
	// under it, so that notes of one document land in order).
	mu sync.Mutex
	// unsure holds, by document, the sums of contents whose upload
	// failed with no word whether the server took them (an answer lost,
	// cut or garbled): a later upload that finds one of them there
	// follows its own earlier save instead of taking it for another
	// client's change. By document, not file name: a rename of a
	// single-file document renames its file too (the reference model
	// with lost answers found a save after such a rename taken for a
	// conflict). Cleared by the next upload to the document that
	// succeeds. Guarded by mu.
	unsure map[remote.ID][]contentSum
	// lostInserts holds, by the document whose save ended in a new one
	// (a conflict copy, or the document again after it was deleted on
	// the server), the names and sums of such inserts that failed with
	// no word whether the server made the document: the retry looks
	// for it (insertOnce) instead of making a second one. Guarded by mu.
	lostInserts map[remote.ID][]namedSum
}

// namedSum is an insert's name and content.
type namedSum struct {
	Name string     `json:"name"`
	Sum  contentSum `json:"sum"`
}

// contentSum is a content's size and hex SHA-256.
type contentSum struct {
	Size int64  `json:"size"`
	SHA  string `json:"sha"`
}

// A Notebook keeps small records durably, by key.
type Notebook interface {
	SetNote(key string, v []byte) error // nil v: drop the note
	Notes() (map[string][]byte, error)
}

// The notes' keys: a prefix, then the document's ID.
const (
	noteUnsure = "unsure/"
	noteInsert = "insert/"
)

// Load reads back the notes an earlier mount kept: a save whose answer
// was lost before a crash is still known as this mount's own at the
// replay of a newer one, not taken for another client's change (a
// conflict copy of its own earlier save). Call it before the first Send.
func (s *Sender) Load() error {
	if s.Notes == nil {
		return nil
	}
	notes, err := s.Notes.Notes()
	if err != nil {
		return fmt.Errorf("read the upload notes: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unsure = notesOf[contentSum](notes, noteUnsure)
	s.lostInserts = notesOf[namedSum](notes, noteInsert)
	return nil
}

// notesOf reads back the notes under prefix, by document; nil if none.
func notesOf[T any](notes map[string][]byte, prefix string) map[remote.ID][]T {
	var out map[remote.ID][]T
	for k, v := range notes {
		doc, ok := strings.CutPrefix(k, prefix)
		var l []T
		if !ok || json.Unmarshal(v, &l) != nil || len(l) == 0 {
			continue
		}
		if out == nil {
			out = map[remote.ID][]T{}
		}
		out[remote.ID(doc)] = l
	}
	return out
}

// note keeps v (nil: nothing) under prefix+doc in the notebook (mu held).
// A note that cannot be kept costs only after a crash: a save may then
// become a conflict copy of its own lost one. Nothing is lost.
func (s *Sender) note(prefix string, doc remote.ID, v any) {
	if s.Notes == nil {
		return
	}
	var b []byte
	if v != nil {
		var err error
		if b, err = json.Marshal(v); err != nil {
			return
		}
	}
	if err := s.Notes.SetNote(prefix+string(doc), b); err != nil {
		s.Log.Warn("could not note a save whose answer was lost", "doc", doc, "err", err)
	}
}

// maxUnsure bounds the sums kept per document: each is a save this mount
// made while the server did not answer.
const maxUnsure = 8

// Request is one upload: a journal record and the bytes it describes.
type Request struct {
	Rec  cache.Record
	Data io.ReaderAt
	// Current is the repository's file as the caller last saw it (replace
	// only; zero when unknown): an upload of the very same bytes makes no
	// version.
	Current remote.File
	// Replay: the record comes from an earlier mount's journal; an upload
	// that already reached the server before a crash is not repeated.
	Replay bool
	// Staged is Data sent ahead (remote.Stager), or nil; the caller
	// discards it after Send if no save took it.
	Staged remote.Staged
	// Contested: the document is known to have changed on the server
	// since this content's own save of it (a create whose answer was
	// lost, then another client's save): the content goes beside it as a
	// conflict copy, unless the document holds these very bytes.
	Contested bool
}

// Result is the repository's state after an upload: the document, the name
// of the uploaded file in it, and the name of the conflict copy if the
// content went there instead. An empty node ID means the target is gone and
// the content was saved as a new document elsewhere. Unchanged: the
// repository had these bytes already and nothing was sent (Node is zero).
type Result struct {
	Node      remote.Node
	File      string
	Conflict  string
	Unchanged bool
}

// Send performs one upload. A stale token whose file the server has not
// changed is retried with the fresh token; a real conflict saves the
// content as a conflict copy beside the file.
func (s *Sender) Send(ctx context.Context, req Request) (Result, error) {
	rec := req.Rec
	c := remote.Content{ReaderAt: req.Data, Size: rec.Size, Staged: req.Staged}
	if rec.Op == cache.OpInsert {
		if req.Replay {
			if n, ok := s.alreadyInserted(ctx, rec, req.Data); ok {
				return Result{Node: n, File: rec.Name}, nil
			}
		}
		n, err := s.Repo.Insert(ctx, rec.Parent, rec.Name, c)
		if err != nil {
			return Result{}, fmt.Errorf("insert %s: %w", rec.Path, err)
		}
		return Result{Node: n, File: rec.Name}, nil
	}
	if req.Contested {
		cur, same, err := s.current(ctx, rec, req.Data)
		if err != nil {
			return Result{}, fmt.Errorf("%s %s: %w", rec.Op, rec.Path, err)
		}
		if same {
			return Result{Node: cur, File: rec.Name}, nil
		}
		return s.conflictCopy(ctx, rec, c, cur)
	}
	if rec.Op == cache.OpReplace && !req.Replay && req.Current.ContentID == rec.Base && req.Current.ContentID != "" {
		// The same bytes as the document has (rsync over a fresh cache,
		// a save without changes): no new version. A check that could
		// not be made uploads: a version too many at worst.
		if same, err := s.holds(ctx, rec.Doc, req.Current, req.Data, rec.Size); err == nil && same && s.still(ctx, rec) {
			return Result{File: rec.Name, Unchanged: true}, nil
		}
	}
	if rec.Op == cache.OpReplace && !req.Replay && s.wasUnsure(rec, req.Data) {
		// These very bytes went up before with no answer: if the server
		// took them, this save is no change (one save, one version).
		if cur, same, err := s.current(ctx, rec, req.Data); err == nil && same {
			s.forget(rec)
			return Result{Node: cur, File: rec.Name}, nil
		}
	}
	token := rec.Token
	for attempt := 0; attempt < 4; attempt++ {
		var n remote.Node
		err := remote.ErrConflict // a replay checks the server state first
		if !req.Replay || attempt > 0 {
			if rec.Op == cache.OpReplace {
				n, err = s.Repo.Replace(ctx, rec.Doc, token, rec.Name, c)
			} else {
				n, err = s.Repo.Append(ctx, rec.Doc, token, rec.Name, c)
			}
		}
		if err == nil {
			s.forget(rec)
			return Result{Node: n, File: rec.Name}, nil
		}
		if !errors.Is(err, remote.ErrConflict) && !errors.Is(err, remote.ErrExist) && !errors.Is(err, remote.ErrNotFound) {
			if !remote.Permanent(err) {
				s.remember(rec, req.Data) // the server may have taken it
			}
			return Result{}, fmt.Errorf("%s %s: %w", rec.Op, rec.Path, err)
		}
		cur, serr := s.Repo.Stat(ctx, rec.Doc)
		if errors.Is(serr, remote.ErrNotFound) {
			return s.saveOrphan(ctx, rec, c)
		}
		if serr != nil {
			return Result{}, fmt.Errorf("%s %s: %w", rec.Op, rec.Path, serr)
		}
		cf, has := cur.File(rec.Name)
		if has {
			same, err := s.holds(ctx, cur.ID, cf, req.Data, rec.Size)
			if err != nil {
				// Bytes that could not be read back are no sign of
				// someone else's change: taking them for one made a
				// conflict copy of a save the server had applied, its
				// answer lost (TestFaults, cut-body at 50 %). Later.
				return Result{}, fmt.Errorf("%s %s: compare with the server's content: %w", rec.Op, rec.Path, err)
			}
			if same {
				// Already there: an earlier try whose answer was lost,
				// or the same bytes as the server has.
				s.forget(rec)
				return Result{Node: cur, File: rec.Name}, nil
			}
		}
		if (rec.Op == cache.OpReplace && has && cf.ContentID == rec.Base) || (rec.Op == cache.OpAppend && !has) {
			restored, err := s.restoredOver(ctx, rec)
			if err != nil {
				return Result{}, fmt.Errorf("%s %s: read the history: %w", rec.Op, rec.Path, err)
			}
			if !restored {
				token = cur.Token // someone else changed something else: not a conflict
				continue
			}
		}
		if has {
			mine, err := s.earlier(ctx, rec, cur.ID, cf)
			if err != nil {
				return Result{}, fmt.Errorf("%s %s: compare with the server's content: %w", rec.Op, rec.Path, err)
			}
			if mine {
				// An earlier save of this file from this mount, whose
				// answer was lost, reached the server; a newer local
				// content (a save by rename since, say) follows it.
				s.Log.Info("an earlier save whose answer was lost had reached the server; this one follows it", "path", rec.Path)
				token = cur.Token
				continue
			}
		}
		if rec.Op == cache.OpReplace && !has {
			return s.saveOrphan(ctx, rec, c)
		}
		return s.conflictCopy(ctx, rec, c, cur)
	}
	return Result{}, fmt.Errorf("%s %s: %w", rec.Op, rec.Path, remote.ErrConflict)
}

// current is rec's document as the server has it now, and whether its
// file rec.Name holds data's bytes (an error: it could not tell).
func (s *Sender) current(ctx context.Context, rec cache.Record, data io.ReaderAt) (remote.Node, bool, error) {
	cur, err := s.Repo.Stat(ctx, rec.Doc)
	if err != nil {
		return remote.Node{}, false, err
	}
	cf, has := cur.File(rec.Name)
	if !has {
		return cur, false, nil
	}
	same, err := s.holds(ctx, cur.ID, cf, data, rec.Size)
	if err != nil {
		return remote.Node{}, false, fmt.Errorf("compare with the server's content: %w", err)
	}
	return cur, same, nil
}

// still tells whether the document still holds the content the change
// started from. The file's view may predate another client's save; the
// bytes equal to what that view shows would otherwise hide it (the
// upload below then finds the conflict).
func (s *Sender) still(ctx context.Context, rec cache.Record) bool {
	cur, err := s.Repo.Stat(ctx, rec.Doc)
	if err != nil {
		return false
	}
	cf, ok := cur.File(rec.Name)
	return ok && cf.ContentID == rec.Base
}

// conflictCopy saves content that would overwrite someone else's change
// next to the file.
func (s *Sender) conflictCopy(ctx context.Context, rec cache.Record, c remote.Content, cur remote.Node) (Result, error) {
	name := ConflictName(rec.Name, s.Now())
	res := Result{Node: cur, File: rec.Name}
	var err error
	if len(cur.Files) > 1 {
		res.Node, err = s.Repo.Append(ctx, cur.ID, cur.Token, name, c)
	} else {
		_, name, err = s.insertOnce(ctx, cur.ID, cur.Parent, name, c)
	}
	if err != nil {
		return Result{}, fmt.Errorf("save conflict copy of %s: %w", rec.Path, err)
	}
	res.Conflict = name
	s.Log.Warn("the file changed on the server since it was opened; the local content was saved as a conflict copy",
		"path", rec.Path, "copy", name)
	return res, nil
}

// saveOrphan keeps content whose document was deleted on the server, as a
// new document of the same name in the folder it was in.
func (s *Sender) saveOrphan(ctx context.Context, rec cache.Record, c remote.Content) (Result, error) {
	if rec.Parent == "" {
		return Result{}, fmt.Errorf("%s %s: the document was deleted on the server: %w", rec.Op, rec.Path, remote.ErrNotFound)
	}
	n, _, err := s.insertOnce(ctx, rec.Doc, rec.Parent, rec.Name, c)
	if err != nil {
		return Result{}, fmt.Errorf("save %s as a new document (the old one was deleted on the server): %w", rec.Path, err)
	}
	s.Log.Warn("the document was deleted on the server; the local content was saved as a new document", "path", rec.Path)
	if rec.Op == cache.OpAppend { // the file's document is gone: it lives on elsewhere
		return Result{Conflict: rec.Name}, nil
	}
	return Result{Node: n, File: rec.Name}, nil
}

// insertOnce inserts c as document name in parent, for a save of
// document key that ends in a new document. When an earlier try of the
// same content lost its answer, it looks for the document that try may
// have made first, and else uses that try's name. It returns the name
// used.
func (s *Sender) insertOnce(ctx context.Context, key, parent remote.ID, name string, c remote.Content) (remote.Node, string, error) {
	sum := contentSum{c.Size, SHA256Hex(c.ReaderAt, c.Size)}
	earlier := false
	s.mu.Lock()
	for _, l := range s.lostInserts[key] {
		if l.Sum == sum {
			name, earlier = l.Name, true
		}
	}
	s.mu.Unlock()
	if earlier {
		n, ok, err := s.inserted(ctx, parent, name, c.ReaderAt, c.Size)
		if err != nil {
			return remote.Node{}, "", err
		}
		if ok {
			s.dropLostInserts(key)
			return n, name, nil
		}
	}
	n, err := s.Repo.Insert(ctx, parent, name, c)
	if err != nil {
		if !remote.Permanent(err) && sum.SHA != "" {
			s.mu.Lock()
			if s.lostInserts == nil {
				s.lostInserts = map[remote.ID][]namedSum{}
			}
			l := append(s.lostInserts[key], namedSum{name, sum})
			s.lostInserts[key] = l[max(0, len(l)-maxUnsure):]
			s.note(noteInsert, key, s.lostInserts[key])
			s.mu.Unlock()
		}
		return remote.Node{}, "", err
	}
	s.dropLostInserts(key)
	return n, name, nil
}

func (s *Sender) dropLostInserts(key remote.ID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.lostInserts[key]; ok {
		delete(s.lostInserts, key)
		s.note(noteInsert, key, nil)
	}
}

// inserted finds document name in parent holding data's bytes (an error:
// it could not tell for now).
func (s *Sender) inserted(ctx context.Context, parent remote.ID, name string, data io.ReaderAt, size int64) (remote.Node, bool, error) {
	kids, err := s.Repo.List(ctx, parent)
	if err != nil {
		return remote.Node{}, false, err
	}
	for _, k := range kids {
		if k.Kind != remote.KindDocument || k.Name != name || len(k.Files) != 1 || k.Files[0].Size != size {
			continue
		}
		same, err := s.holds(ctx, k.ID, k.Files[0], data, size)
		if err != nil {
			return remote.Node{}, false, err
		}
		if same {
			return k, true, nil
		}
	}
	return remote.Node{}, false, nil
}

// alreadyInserted finds a document an interrupted insert already created.
func (s *Sender) alreadyInserted(ctx context.Context, rec cache.Record, data io.ReaderAt) (remote.Node, bool) {
	kids, err := s.Repo.List(ctx, rec.Parent)
	if err != nil {
		return remote.Node{}, false
	}
	sum := ""
	for _, k := range kids {
		if k.Kind != remote.KindDocument || k.Name != rec.Name || len(k.Files) != 1 || k.Files[0].Size != rec.Size || k.Files[0].SHA256 == "" {
			continue
		}
		if sum == "" {
			sum = SHA256Hex(data, rec.Size)
		}
		if k.Files[0].SHA256 == sum {
			return k, true
		}
	}
	return remote.Node{}, false
}

// remember notes data as a content of rec's document the server may
// have taken.
func (s *Sender) remember(rec cache.Record, data io.ReaderAt) {
	if rec.Doc == "" {
		return
	}
	sum := SHA256Hex(data, rec.Size)
	if sum == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.unsure == nil {
		s.unsure = map[remote.ID][]contentSum{}
	}
	sums := append(s.unsure[rec.Doc], contentSum{rec.Size, sum})
	s.unsure[rec.Doc] = sums[max(0, len(sums)-maxUnsure):]
	s.note(noteUnsure, rec.Doc, s.unsure[rec.Doc])
}

// wasUnsure tells whether data is a content remember noted for rec's
// document.
func (s *Sender) wasUnsure(rec cache.Record, data io.ReaderAt) bool {
	s.mu.Lock()
	sums := slices.Clone(s.unsure[rec.Doc])
	s.mu.Unlock()
	if !slices.ContainsFunc(sums, func(c contentSum) bool { return c.Size == rec.Size }) {
		return false
	}
	sum := contentSum{rec.Size, SHA256Hex(data, rec.Size)}
	return slices.Contains(sums, sum)
}

// forget drops what remember noted of rec's document: its state is
// known.
func (s *Sender) forget(rec cache.Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.unsure[rec.Doc]; ok {
		delete(s.unsure, rec.Doc)
		s.note(noteUnsure, rec.Doc, nil)
	}
}

// earlier tells whether the server's file cf is a content this mount
// sent to rec's document without learning whether the server took it (an
// error: it could not tell for now).
func (s *Sender) earlier(ctx context.Context, rec cache.Record, doc remote.ID, cf remote.File) (bool, error) {
	s.mu.Lock()
	sums := slices.Clone(s.unsure[rec.Doc])
	s.mu.Unlock()
	theirs := ""
	for _, c := range sums {
		if c.Size != cf.Size {
			continue
		}
		if theirs == "" {
			var err error
			if theirs, err = s.ServerSum(ctx, doc, cf); err != nil || theirs == "" {
				return false, err
			}
		}
		if c.SHA == theirs {
			return true, nil
		}
	}
	return false, nil
}

// restoredOver tells whether the file's base content, found again on
// the server, is another client's save over an earlier save of this
// mount whose answer was lost: the history, from the newest version
// back over those holding the base content and then over other
// clients' versions, reaches one of the lost contents before the base
// content again (a content ID that is a checksum cannot tell the two
// apart). Other clients' versions come in between when another client
// saved twice after the lost save, the second time the base bytes (the
// reference model with lost answers found it: the newer save went on
// top as no conflict). An error means it could not tell for now. A repository without a
// history of every save, or that refuses it, cannot tell at all, and the
// save goes on.
func (s *Sender) restoredOver(ctx context.Context, rec cache.Record) (bool, error) {
	s.mu.Lock()
	sums := slices.Clone(s.unsure[rec.Doc])
	s.mu.Unlock()
	caps := s.Repo.Capabilities()
	if len(sums) == 0 || rec.Op != cache.OpReplace || !caps.Versions || caps.VersionsOnPublish {
		return false, nil
	}
	vs, err := s.Repo.Versions(ctx, rec.Doc)
	if errors.Is(err, remote.ErrNotFound) || remote.Permanent(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	other := false // past a version of other content than the base
	for i := len(vs) - 1; i >= 0; i-- {
		f, ok := remote.Node{Files: vs[i].Files}.File(rec.Name)
		if !ok {
			return false, nil
		}
		if f.ContentID == rec.Base {
			if other {
				return false, nil // the base the change started from
			}
			continue
		}
		other = true
		if !slices.ContainsFunc(sums, func(c contentSum) bool { return c.Size == f.Size }) {
			continue
		}
		theirs, err := s.versionSum(ctx, rec.Doc, vs[i].N, f)
		if err != nil {
			return false, err
		}
		if slices.Contains(sums, contentSum{f.Size, theirs}) {
			return true, nil
		}
	}
	return false, nil
}

// versionSum is ServerSum for file f of version n.
func (s *Sender) versionSum(ctx context.Context, doc remote.ID, n int, f remote.File) (string, error) {
	if f.SHA256 != "" {
		return f.SHA256, nil
	}
	rc, err := s.Repo.OpenVersion(ctx, doc, n, f.Name, 0, -1)
	if errors.Is(err, remote.ErrNotFound) || remote.Permanent(err) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return sumRead(rc, fmt.Sprintf("version %d of %s", n, f.Name), f.Size)
}

// ServerSum is the hex SHA-256 of the repository's file cf: the one the
// repository keeps, else read back ("" for a file that cannot be read as
// this mount's: gone, refused; an error when it could not tell for now).
func (s *Sender) ServerSum(ctx context.Context, doc remote.ID, cf remote.File) (string, error) {
	if cf.SHA256 != "" {
		return cf.SHA256, nil
	}
	rc, err := s.openServer(ctx, doc, cf)
	if rc == nil {
		return "", err
	}
	return sumRead(rc, cf.Name, cf.Size)
}

// sumRead is the hex SHA-256 of what rc reads, which must be size bytes
// (else the transfer broke: ErrUnavailable); it closes rc.
func sumRead(rc io.ReadCloser, what string, size int64) (string, error) {
	defer rc.Close()
	h := sha256.New()
	if n, err := io.Copy(h, rc); err != nil || n != size {
		return "", fmt.Errorf("read back %s: %w: %d of %d bytes: %v", what, remote.ErrUnavailable, n, size, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// holds tells whether the repository's file cf has exactly data's bytes:
// by SHA-256 where the repository keeps one, else (same size only) by
// reading it back and comparing as it comes, stopping at the first
// difference. An error means it could not tell for now (the server did
// not answer, the transfer broke).
func (s *Sender) holds(ctx context.Context, doc remote.ID, cf remote.File, data io.ReaderAt, size int64) (bool, error) {
	if cf.Size != size {
		return false, nil
	}
	if cf.SHA256 != "" {
		sum := SHA256Hex(data, size)
		if sum == "" {
			return false, fmt.Errorf("read the local copy: %w", remote.ErrUnavailable)
		}
		return cf.SHA256 == sum, nil
	}
	rc, err := s.openServer(ctx, doc, cf)
	if rc == nil {
		return false, err
	}
	defer rc.Close()
	const chunk = 1 << 20
	theirs, ours := make([]byte, chunk), make([]byte, chunk)
	for off := int64(0); off < size; off += chunk {
		n := int(min(chunk, size-off))
		if _, err := io.ReadFull(rc, theirs[:n]); err != nil {
			// The size matched: a short read is a failed transfer.
			return false, fmt.Errorf("read back %s: %w: %v", cf.Name, remote.ErrUnavailable, err)
		}
		if _, err := data.ReadAt(ours[:n], off); err != nil && !(err == io.EOF && off+int64(n) == size) {
			return false, fmt.Errorf("read the local copy: %w: %v", remote.ErrUnavailable, err)
		}
		if !bytes.Equal(theirs[:n], ours[:n]) {
			return false, nil
		}
	}
	return true, nil
}

// openServer opens the repository's file cf to read it back: nil and no
// error for a file that cannot be read as this mount's, whatever it
// holds (gone, refused for good); nil and an error when the read could
// not start for now.
func (s *Sender) openServer(ctx context.Context, doc remote.ID, cf remote.File) (io.ReadCloser, error) {
	rc, err := s.Repo.Open(ctx, doc, cf.Name, 0, -1)
	if errors.Is(err, remote.ErrNotFound) || remote.Permanent(err) {
		return nil, nil
	}
	return rc, err
}

// SHA256Hex is the hex SHA-256 of r's first size bytes ("" if unreadable).
func SHA256Hex(r io.ReaderAt, size int64) string {
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(r, 0, size)); err != nil {
		return ""
	}
	return hex.EncodeToString(h.Sum(nil))
}

// ConflictName is "<name> (conflict <time>).<ext>".
func ConflictName(name string, t time.Time) string {
	ext := path.Ext(name)
	if ext == name {
		ext = ""
	}
	return strings.TrimSuffix(name, ext) + " (conflict " + t.UTC().Format("2006-01-02T15-04-05Z") + ")" + ext
}
