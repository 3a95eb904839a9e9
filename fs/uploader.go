package fs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/dmsfs/dmsfs/cache"
	"github.com/dmsfs/dmsfs/remote"
)

// uploader runs the uploads that are not done inside close: write-back
// uploads, retries of failed ones, and journal records of an earlier mount.
//
// Lock order: File.mu before uploader.mu; the loop never holds mu while it
// takes a File's.
type uploader struct {
	fsys *FS

	mu      sync.Mutex
	files   map[*File]*pending  // guarded by mu
	orphans map[string]*pending // journal records without a node, by key; guarded by mu
	busy    int                 // uploads under way; guarded by mu

	wake chan struct{}
	quit chan struct{}
	done chan struct{}
}

// uploadWorkers is how many queued uploads run at once.
const uploadWorkers = 4

type pending struct {
	at      time.Time
	tries   int
	path    string
	size    int64
	lastErr string
	rec     cache.Record // orphans only
}

// Queue is the state of the upload queue.
type Queue struct {
	Files   int         `json:"files"`
	Bytes   int64       `json:"bytes"`
	Failing int         `json:"failing"`
	Items   []QueueItem `json:"items,omitempty"`
}

// QueueItem is one pending upload.
type QueueItem struct {
	Path      string    `json:"path"`
	Size      int64     `json:"size"`
	Due       time.Time `json:"due"`
	Tries     int       `json:"tries"`
	LastError string    `json:"last_error,omitempty"`
}

func newUploader(fsys *FS) *uploader {
	u := &uploader{fsys: fsys, files: map[*File]*pending{}, orphans: map[string]*pending{},
		wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	go u.loop()
	return u
}

// retryDelay is the capped exponential backoff with jitter after tries
// failed attempts.
func retryDelay(tries int) time.Duration {
	d := time.Second << min(tries, 9)
	d = min(d, 5*time.Minute)
	return d/2 + rand.N(d/2+1)
}

// pendingFor returns f's queue entry, adding it (u.mu and f.mu held).
func (u *uploader) pendingFor(f *File) *pending {
	p := u.files[f]
	if p == nil {
		p = &pending{}
		u.files[f] = p
	}
	p.path, p.size = f.path(), f.size
	return p
}

// schedule queues f's upload after delay (called with f.mu held).
func (u *uploader) schedule(f *File, delay time.Duration) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.pendingFor(f).at = u.fsys.now().Add(delay)
	if delay == 0 {
		u.poke()
	}
}

// ensureQueued queues f's upload after delay unless it is queued already,
// e.g. waiting out the backoff of a failure (called with f.mu held).
func (u *uploader) ensureQueued(f *File, delay time.Duration) {
	u.mu.Lock()
	_, queued := u.files[f]
	u.mu.Unlock()
	if !queued {
		u.schedule(f, delay)
	}
}

// failed queues f again after its upload failed (called with f.mu held).
func (u *uploader) failed(f *File, err error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	p := u.pendingFor(f)
	p.tries++
	p.lastErr = err.Error()
	p.at = u.fsys.now().Add(retryDelay(p.tries))
}

func (u *uploader) cancel(f *File) {
	u.mu.Lock()
	delete(u.files, f)
	u.mu.Unlock()
}

func (u *uploader) poke() {
	select {
	case u.wake <- struct{}{}:
	default:
	}
}

func (u *uploader) stop() {
	close(u.quit)
	<-u.done
}

func (u *uploader) loop() {
	defer close(u.done)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-u.quit:
			return
		case <-tick.C:
		case <-u.wake:
		}
		u.runDue()
	}
}

// runDue uploads what is due, one at a time.
func (u *uploader) runDue() {
	now := u.fsys.now()
	u.mu.Lock()
	var files []*File
	for f, p := range u.files {
		if !p.at.After(now) {
			files = append(files, f)
		}
	}
	var orphans []*pending
	for _, p := range u.orphans {
		if !p.at.After(now) {
			orphans = append(orphans, p)
		}
	}
	u.busy = len(files) + len(orphans)
	u.mu.Unlock()
	defer func() { u.mu.Lock(); u.busy = 0; u.mu.Unlock() }()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	// Several at once: with write-back, copying many small files is bound
	// by the server's answer time per file, not by bandwidth.
	sem := make(chan struct{}, uploadWorkers)
	var wg sync.WaitGroup
	for _, f := range files {
		select {
		case <-u.quit:
			wg.Wait()
			return
		case sem <- struct{}{}:
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			f.mu.Lock()
			err := f.upload(ctx)
			f.mu.Unlock()
			u.finish(f, nil, err)
		}()
	}
	wg.Wait()
	for _, p := range orphans {
		u.finish(nil, p, u.replayOne(ctx, p.rec))
	}
}

func (u *uploader) finish(f *File, o *pending, err error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	p := o
	if f != nil {
		p = u.files[f]
	}
	if p == nil {
		return
	}
	if err == nil {
		if f != nil {
			delete(u.files, f)
		} else {
			delete(u.orphans, o.rec.Key)
		}
		return
	}
	p.tries++
	p.lastErr = err.Error()
	p.at = u.fsys.now().Add(retryDelay(p.tries))
	u.fsys.fail("upload", p.path, err)
}

func (u *uploader) queue() Queue {
	u.mu.Lock()
	defer u.mu.Unlock()
	var q Queue
	add := func(p *pending) {
		q.Files++
		q.Bytes += p.size
		if p.tries > 0 {
			q.Failing++
		}
		q.Items = append(q.Items, QueueItem{Path: p.path, Size: p.size, Due: p.at, Tries: p.tries, LastError: p.lastErr})
	}
	for _, p := range u.files {
		add(p)
	}
	for _, p := range u.orphans {
		add(p)
	}
	sort.Slice(q.Items, func(i, j int) bool { return q.Items[i].Path < q.Items[j].Path })
	return q
}

// drain makes everything due now and waits until the queue is empty.
func (u *uploader) drain(ctx context.Context, progress func(Queue)) error {
	u.mu.Lock()
	now := u.fsys.now()
	for _, p := range u.files {
		if p.tries == 0 {
			p.at = now
		}
	}
	for _, p := range u.orphans {
		if p.tries == 0 {
			p.at = now
		}
	}
	u.mu.Unlock()
	u.poke()
	last := -1
	for {
		q := u.queue()
		u.mu.Lock()
		busy := u.busy
		u.mu.Unlock()
		if progress != nil && q.Files != last {
			progress(q)
			last = q.Files
		}
		if q.Files == 0 && busy == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d uploads still pending (kept in the spool): %w", q.Files, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// replay uploads the journal an earlier mount left behind. What fails stays
// queued and is retried in the background.
func (u *uploader) replay(ctx context.Context) error {
	recs, err := u.fsys.spool.Pending()
	if err != nil {
		return err
	}
	if len(recs) == 0 {
		return nil
	}
	u.fsys.log.Info("uploading files a previous mount left in the spool", "count", len(recs))
	for _, rec := range recs {
		if err := u.replayOne(ctx, rec); err != nil {
			u.fsys.fail("upload", rec.Path, err)
			u.mu.Lock()
			u.orphans[rec.Key] = &pending{at: u.fsys.now().Add(retryDelay(1)), tries: 1, path: rec.Path,
				size: rec.Size, lastErr: err.Error(), rec: rec}
			u.mu.Unlock()
			continue
		}
		u.fsys.log.Info("uploaded from the spool", "path", rec.Path, "bytes", rec.Size)
	}
	return nil
}

func (u *uploader) replayOne(ctx context.Context, rec cache.Record) error {
	fh, err := os.Open(u.fsys.spool.Path(rec.Key))
	if err != nil {
		return fmt.Errorf("spool data of %s: %w", rec.Path, err)
	}
	defer fh.Close()
	if st, err := fh.Stat(); err == nil && st.Size() != rec.Size {
		// Written again after the record (not fsync'd, so not promised):
		// what is on disk is the newest content.
		u.fsys.log.Debug("spool data grew after its journal record", "path", rec.Path, "bytes", st.Size(), "journal", rec.Size)
		rec.Size = st.Size()
	}
	res, err := u.send(ctx, rec, fh, true)
	if err != nil {
		return err
	}
	if rf, ok := fileOf(res.node, res.file); ok && res.conflict == "" && (rec.Mode != 0 || !rec.Mtime.IsZero()) {
		u.fsys.spool.SetAttr(u.fsys.attrKey(res.node.ID, rf.Name), cache.Attr{ContentID: rf.ContentID, Mode: rec.Mode, Mtime: rec.Mtime})
	}
	u.fsys.spool.Remove(rec.Key, false, true)
	return nil
}

// sendResult is the repository's state after an upload: the document, the
// name of the uploaded file in it, and the name of the conflict copy if the
// content went there instead. An empty node ID means the target is gone and
// the content was saved as a new document elsewhere.
type sendResult struct {
	node     remote.Node
	file     string
	conflict string
}

// send performs one recorded upload. A stale token whose file the server
// has not changed is retried with the fresh token; a real conflict saves the
// content as a conflict copy beside the file. With replay set, an upload that
// already reached the server before a crash is recognised and not repeated.
func (u *uploader) send(ctx context.Context, rec cache.Record, data io.ReaderAt, replay bool) (sendResult, error) {
	repo := u.fsys.repo
	c := remote.Content{ReaderAt: data, Size: rec.Size}
	if rec.Op == cache.OpInsert {
		if replay {
			if n, ok := u.alreadyInserted(ctx, rec, data); ok {
				return sendResult{node: n, file: rec.Name}, nil
			}
		}
		n, err := repo.Insert(ctx, rec.Parent, rec.Name, c)
		if err != nil {
			return sendResult{}, fmt.Errorf("insert %s: %w", rec.Path, err)
		}
		return sendResult{node: n, file: rec.Name}, nil
	}
	token := rec.Token
	for attempt := 0; attempt < 4; attempt++ {
		var n remote.Node
		err := remote.ErrConflict // a replay checks the server state first
		if !replay || attempt > 0 {
			if rec.Op == cache.OpReplace {
				n, err = repo.Replace(ctx, rec.Doc, token, rec.Name, c)
			} else {
				n, err = repo.Append(ctx, rec.Doc, token, rec.Name, c)
			}
		}
		if err == nil {
			return sendResult{node: n, file: rec.Name}, nil
		}
		if !errors.Is(err, remote.ErrConflict) && !errors.Is(err, remote.ErrExist) && !errors.Is(err, remote.ErrNotFound) {
			return sendResult{}, fmt.Errorf("%s %s: %w", rec.Op, rec.Path, err)
		}
		cur, serr := repo.Stat(ctx, rec.Doc)
		if errors.Is(serr, remote.ErrNotFound) {
			return u.saveOrphan(ctx, rec, c)
		}
		if serr != nil {
			return sendResult{}, fmt.Errorf("%s %s: %w", rec.Op, rec.Path, serr)
		}
		cf, has := cur.File(rec.Name)
		if has && u.holds(ctx, cur.ID, cf, data, rec.Size) {
			// Already there: an earlier try whose answer was lost.
			return sendResult{node: cur, file: rec.Name}, nil
		}
		if (rec.Op == cache.OpReplace && has && cf.ContentID == rec.Base) || (rec.Op == cache.OpAppend && !has) {
			token = cur.Token // someone else changed something else: not a conflict
			continue
		}
		if rec.Op == cache.OpReplace && !has {
			return u.saveOrphan(ctx, rec, c)
		}
		return u.conflictCopy(ctx, rec, c, cur)
	}
	return sendResult{}, fmt.Errorf("%s %s: %w", rec.Op, rec.Path, remote.ErrConflict)
}

// conflictCopy saves content that would overwrite someone else's change
// next to the file.
func (u *uploader) conflictCopy(ctx context.Context, rec cache.Record, c remote.Content, cur remote.Node) (sendResult, error) {
	name := conflictName(rec.Name, u.fsys.now())
	res := sendResult{node: cur, file: rec.Name, conflict: name}
	var err error
	if len(cur.Files) > 1 {
		res.node, err = u.fsys.repo.Append(ctx, cur.ID, cur.Token, name, c)
	} else {
		_, err = u.fsys.repo.Insert(ctx, cur.Parent, name, c)
	}
	if err != nil {
		return sendResult{}, fmt.Errorf("save conflict copy of %s: %w", rec.Path, err)
	}
	u.fsys.log.Warn("the file changed on the server since it was opened; the local content was saved as a conflict copy",
		"path", rec.Path, "copy", name)
	return res, nil
}

// saveOrphan keeps content whose document was deleted on the server, as a
// new document of the same name in the folder it was in.
func (u *uploader) saveOrphan(ctx context.Context, rec cache.Record, c remote.Content) (sendResult, error) {
	if rec.Parent == "" {
		return sendResult{}, fmt.Errorf("%s %s: the document was deleted on the server: %w", rec.Op, rec.Path, remote.ErrNotFound)
	}
	n, err := u.fsys.repo.Insert(ctx, rec.Parent, rec.Name, c)
	if err != nil {
		return sendResult{}, fmt.Errorf("save %s as a new document (the old one was deleted on the server): %w", rec.Path, err)
	}
	u.fsys.log.Warn("the document was deleted on the server; the local content was saved as a new document", "path", rec.Path)
	if rec.Op == cache.OpAppend { // the file's document is gone: it lives on elsewhere
		return sendResult{conflict: rec.Name}, nil
	}
	return sendResult{node: n, file: rec.Name}, nil
}

// alreadyInserted finds a document an interrupted insert already created.
func (u *uploader) alreadyInserted(ctx context.Context, rec cache.Record, data io.ReaderAt) (remote.Node, bool) {
	kids, err := u.fsys.repo.List(ctx, rec.Parent)
	if err != nil {
		return remote.Node{}, false
	}
	sum := ""
	for _, k := range kids {
		if k.Kind != remote.KindDocument || k.Name != rec.Name || len(k.Files) != 1 || k.Files[0].Size != rec.Size || k.Files[0].SHA256 == "" {
			continue
		}
		if sum == "" {
			sum = sha256Hex(data, rec.Size)
		}
		if k.Files[0].SHA256 == sum {
			return k, true
		}
	}
	return remote.Node{}, false
}

// holds tells whether the repository's file cf has exactly data's bytes:
// by SHA-256 where the repository keeps one, else (same size only) by
// reading it back, so that an upload that landed although its answer was
// lost is not taken for someone else's change.
func (u *uploader) holds(ctx context.Context, doc remote.ID, cf remote.File, data io.ReaderAt, size int64) bool {
	if cf.Size != size {
		return false
	}
	if cf.SHA256 != "" {
		return cf.SHA256 == sha256Hex(data, size)
	}
	rc, err := u.fsys.repo.Open(ctx, doc, cf.Name, 0, -1)
	if err != nil {
		return false
	}
	defer rc.Close()
	h := sha256.New()
	if _, err := io.Copy(h, rc); err != nil {
		return false
	}
	return hex.EncodeToString(h.Sum(nil)) == sha256Hex(data, size)
}

func sha256Hex(r io.ReaderAt, size int64) string {
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(r, 0, size)); err != nil {
		return ""
	}
	return hex.EncodeToString(h.Sum(nil))
}

// conflictName is "<name> (conflict <time>).<ext>".
func conflictName(name string, t time.Time) string {
	ext := path.Ext(name)
	if ext == name {
		ext = ""
	}
	var b bytes.Buffer
	b.WriteString(strings.TrimSuffix(name, ext))
	b.WriteString(" (conflict ")
	b.WriteString(t.UTC().Format("2006-01-02T15-04-05Z"))
	b.WriteString(")")
	b.WriteString(ext)
	return b.String()
}
