// Package reftest is the reference-model test of dmsfs (after Mountpoint
// for S3's reftests), run against the FUSE-free core (fs/core's tests)
// and, shorter, through a real mount of every backend (fs/fstest).
package reftest

// The reference-model test (after Mountpoint for S3's reftests): seeded
// random sequences of what programs do — cp, shell redirects, appends,
// truncates, temp-file saves (rsync, LibreOffice, sed -i), vim's and
// install's save dances, long-lived handles writing at offsets, renames,
// unlinks, mkdir/rmdir, remounts — and an outside writer changing the
// repository through its API, run against the FUSE-free core and a small
// model of the tree. After each step the touched paths (and every 50 steps
// the whole tree) must show what the model says; at the end the
// repository must hold exactly the model's documents, each with the
// number of versions the model counted: one per save whose bytes differ,
// no empty intermediate ones, no duplicates. The outside writer also saves
// files this mount has unsaved changes to: both are kept, the mount's as a
// conflict copy.
//
// DMSFS_SEED=n replays one sequence; DMSFS_REFTEST_OPS sets the length;
// DMSFS_REFTEST_GREP=path shows the steps that named path when one fails;
// DMSFS_REFTEST_LOG=1 prints the core's log, and DMSFS_REFTEST_ECHO=1 the
// steps as they run (between the log's lines); DMSFS_REFTEST_TRACE=1 adds
// the repository's state after each step.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dmsfs/dmsfs/fs/core"
	"github.com/dmsfs/dmsfs/fs/upload"
	"github.com/dmsfs/dmsfs/remote"
	"github.com/dmsfs/dmsfs/remote/remotetest"
)

// Target is the filesystem under test, addressed by paths relative to its
// root: the core itself, or a real mount of it.
type Target interface {
	// Open opens p read-write, creating it (create) and truncating it
	// (trunc) as open(2) would.
	Open(p string, create, trunc bool) (Handle, error)
	// OpenRead opens p read-only.
	OpenRead(p string) (Handle, error)
	// Stat returns p's size and whether it is a directory.
	Stat(p string) (size int64, dir bool, err error)
	Readdir(p string) ([]string, error)
	Rename(from, to string) error
	Unlink(p string) error
	Mkdir(p string) error
	Rmdir(p string) error
	Truncate(p string, size int64) error
	// Sync waits for the upload queue; Settle first waits until every
	// descriptor that wrote was released (see core.FS.Settle).
	Sync() error
	Settle() error
	// Remount unmounts (every handle is closed) and mounts again with
	// the same cache.
	Remount() error
	// Restart stops without waiting for the upload queue, as a crash
	// does once every descriptor was closed, and mounts again with the
	// same cache: the next mount replays what the queue held.
	Restart() error
}

// Handle is an open file. Flush is a close(2) of one of its descriptors
// (a dup's); Close the last.
type Handle interface {
	WriteAt(b []byte, off int64) error
	ReadAt(b []byte, off int64) (int, error)
	Truncate(size int64) error
	Fsync() error
	Flush() error
	Close() error
}

// Config is one run.
type Config struct {
	Repo remote.Repository
	// Target mounts the repository with the clock (Options.Now) and
	// returns the filesystem under test.
	Target func(now func() time.Time) Target
	Seed   uint64
	Ops    int
	// DocID tells where a target shows which document (the core can);
	// nil skips the check that no two paths show one document.
	DocID func(t Target, p string) remote.ID
	// EndOnly checks the repository only at the end, not after each step.
	EndOnly bool
	// Lossy, if set, is the repository Target mounts, around Repo: a save
	// whose answer it lost may fail (the writer is told), and the run
	// must still end with exactly the model's documents and versions.
	Lossy *Lossy
}

// Clock is a settable clock for tests.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock starts at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// mfile is the model of one file: what the mount shows, and what the
// repository holds of it.
type mfile struct {
	data     []byte
	onServer bool
	server   []byte // the repository's content
	versions int    // the versions the repository must have
	empties  int    // of those, how many were saved empty on purpose
	dirty    bool   // changed since the last save
	writers  int
	gone     bool // unlinked or replaced: never saved again
	// contested: another client replaced the content while this mount
	// had unsaved changes (only while a writer is open); the next save
	// makes a conflict copy. base is the content those changes started
	// from.
	contested bool
	base      []byte
	// held: a save of it lost its answer (Config.Lossy), and the mount's
	// upload queue holds it until a save succeeds or the queue drains; a
	// release then saves only what its own O_TRUNC changed.
	held bool
	// truncated: a released descriptor's O_TRUNC changed the content and
	// no save ran since; the last writer's release saves it even while
	// held (core.File.truncated).
	truncated bool
}

type mhandle struct {
	f     *mfile
	h     Handle
	write bool
	wrote bool
	trunc bool   // its open's O_TRUNC changed the content; no flush of it saved since
	path  string // where it was opened, for messages
}

type model struct {
	files    map[string]*mfile
	dirs     map[string]bool
	unlinked map[string]*mfile // unlinked a moment ago, still on the server
	handles  []*mhandle
	// shadowOf maps a vim backup's path to the document name it hides.
	shadowOf map[string]string
}

// save is what a save does to the repository's side of the model.
func (m *model) save(f *mfile) {
	f.held = false // a save that succeeds ends the queue's hold
	f.truncated = false
	if f.gone {
		return
	}
	f.dirty = false
	if f.onServer && bytes.Equal(f.data, f.server) {
		return // identical bytes make no version
	}
	if len(f.data) == 0 {
		f.empties++
	}
	f.onServer = true
	f.versions++
	f.server = append([]byte(nil), f.data...)
}

// takeBack gives a new file at p the identity of a document unlinked
// there a moment ago, as the core does for install's unlink and create.
func (m *model) takeBack(p string, nf *mfile) {
	if u := m.unlinked[p]; u != nil {
		nf.onServer, nf.server, nf.versions, nf.empties = true, u.server, u.versions, u.empties
		delete(m.unlinked, p)
	}
}

// synced: the deferred deletions ran.
func (m *model) synced() { m.unlinked = map[string]*mfile{} }

type harness struct {
	t    testing.TB
	cfg  Config
	rng  *rand.Rand
	repo remote.Repository
	fs   Target
	clk  *Clock
	// temps tells temp names as the core does (its default patterns).
	temps *core.TempMatcher
	m     *model
	step  int
	log   []string
	// touched are the paths the step changed, checked in the repository
	// after it.
	touched []string
	// counts are what the run did, logged at its end.
	counts map[string]int
}

var (
	fileNames = []string{"a.txt", "b.txt", "report.odt", "notes", "data.bin"}
	dirNames  = []string{"d1", "d2", "sub"}
)

func (h *harness) ctx() context.Context { return context.Background() }

func (h *harness) remount() {
	h.drain("remount", h.fs.Remount)
}

// lost is how many save answers Config.Lossy lost so far.
func (h *harness) lost() int {
	if h.cfg.Lossy == nil {
		return 0
	}
	return h.cfg.Lossy.Lost()
}

// mayLose runs a call that may save: with Config.Lossy, one whose save
// lost its answer may fail (the writer is told; the repository has the
// content, as the model says).
func (h *harness) mayLose(what string, call func() error) bool {
	h.t.Helper()
	before := h.lost()
	err := call()
	if err != nil && h.lost() > before {
		h.logf("%s: the answer was lost (%v)", what, err)
		h.counts["saves whose answer was lost"]++
		return true
	}
	h.noErr(err, what)
	return false
}

// drain runs a call that waits for the upload queue (Sync, Settle,
// Remount). With Config.Lossy the clock first moves past the retries'
// backoff (at most 5 minutes), and no answer is lost meanwhile: the
// queue's retries of lost answers must then finish.
func (h *harness) drain(what string, call func() error) {
	h.t.Helper()
	if l := h.cfg.Lossy; l != nil {
		l.pause(true)
		defer l.pause(false)
		h.clk.Advance(10 * time.Minute)
	}
	h.noErr(call(), what)
	// The queue sent what it held, unless a descriptor has writes no
	// flush saved yet (that flush will).
	for _, f := range h.m.files {
		if !f.held {
			continue
		}
		writing := false
		for _, mh := range h.m.handles {
			writing = writing || (mh.f == f && mh.wrote)
		}
		if f.dirty && !writing {
			h.m.save(f)
		}
		f.held = false
	}
}

func (h *harness) fail(format string, args ...any) {
	h.t.Helper()
	tail := h.log
	if g := os.Getenv("DMSFS_REFTEST_GREP"); g != "" {
		tail = nil
		for _, l := range h.log {
			if strings.Contains(l, g) {
				tail = append(tail, l)
			}
		}
	}
	if len(tail) > 30 {
		tail = tail[len(tail)-30:]
	}
	h.t.Fatalf("step %d: %s\nlast steps:\n  %s", h.step, fmt.Sprintf(format, args...), strings.Join(tail, "\n  "))
}

func (h *harness) noErr(err error, what string) {
	h.t.Helper()
	if err != nil {
		h.fail("%s: %v", what, err)
	}
}

func (h *harness) content() []byte {
	n := h.rng.IntN(5)
	if n == 0 {
		return nil
	}
	size := []int{1, 10, 100, 5000, 70000}[h.rng.IntN(5)]
	b := make([]byte, size)
	for i := range b {
		b[i] = byte('a' + h.rng.IntN(26))
	}
	return b
}

func (h *harness) randomDir() string {
	ds := make([]string, 0, len(h.m.dirs))
	for d := range h.m.dirs {
		ds = append(ds, d)
	}
	sort.Strings(ds)
	return ds[h.rng.IntN(len(ds))]
}

// randomFile picks an existing file, or "" if there is none.
func (h *harness) randomFile() string {
	fs := make([]string, 0, len(h.m.files))
	for p := range h.m.files {
		fs = append(fs, p)
	}
	if len(fs) == 0 {
		return ""
	}
	sort.Strings(fs)
	return fs[h.rng.IntN(len(fs))]
}

func (h *harness) randomPath() string {
	if h.rng.IntN(3) > 0 {
		if p := h.randomFile(); p != "" {
			return p
		}
	}
	return path.Join(h.randomDir(), fileNames[h.rng.IntN(len(fileNames))])
}

// open opens p as a program would: the file if it exists (O_TRUNC when
// asked), else a new one.
func (h *harness) open(p string, trunc bool) (*mhandle, bool) {
	h.touched = append(h.touched, p)
	mf := h.m.files[p]
	ch, err := h.fs.Open(p, mf == nil, trunc)
	h.noErr(err, "open "+p)
	truncated := false
	if mf != nil {
		if trunc && len(mf.data) > 0 {
			mf.data, mf.dirty, truncated = nil, true, true
		}
	} else {
		mf = &mfile{dirty: true}
		h.m.takeBack(p, mf)
		h.m.files[p] = mf
	}
	mf.writers++
	mh := &mhandle{f: mf, h: ch, write: true, trunc: truncated, path: p}
	return mh, true
}

func dirOf(p string) string {
	d := path.Dir(p)
	if d == "." {
		return ""
	}
	return d
}

func (h *harness) write(mh *mhandle, off int, data []byte) {
	if len(data) == 0 {
		return
	}
	h.noErr(mh.h.WriteAt(data, int64(off)), "write "+mh.path)
	f := mh.f
	if end := off + len(data); end > len(f.data) {
		f.data = append(f.data, make([]byte, end-len(f.data))...)
	}
	copy(f.data[off:], data)
	f.dirty, mh.wrote = true, true
}

// pathOf is where the model shows f now ("" if nowhere).
func (h *harness) pathOf(f *mfile) string {
	for p, x := range h.m.files {
		if x == f {
			return p
		}
	}
	return ""
}

func (h *harness) flush(mh *mhandle) {
	h.touched = append(h.touched, h.pathOf(mh.f))
	lost := h.mayLose("flush "+mh.path, mh.h.Flush)
	if mh.write && mh.wrote {
		mh.wrote, mh.trunc = false, false
		if mh.f.dirty {
			h.save(mh.f)
		}
	}
	mh.f.held = mh.f.held || lost
}

func (h *harness) release(mh *mhandle) {
	h.touched = append(h.touched, h.pathOf(mh.f))
	lost := h.mayLose("release "+mh.path, mh.h.Close)
	if mh.write {
		mh.f.writers--
		mh.f.truncated = mh.f.truncated || mh.trunc
		if mh.f.writers == 0 && mh.f.dirty && (!mh.f.held || mh.f.truncated) {
			h.save(mh.f)
		}
	}
	mh.f.held = mh.f.held || lost
	for i, x := range h.m.handles {
		if x == mh {
			h.m.handles = append(h.m.handles[:i], h.m.handles[i+1:]...)
			break
		}
	}
}

// save is a save by a handle of f: one version, or a conflict copy
// beside f when another client changed f's document under the unsaved
// change (DESIGN: "the local content is saved next to it as <name>
// (conflict <time>).<ext>"), after which f shows the repository's content.
func (h *harness) save(f *mfile) {
	if !f.contested || f.gone {
		h.m.save(f)
		return
	}
	f.contested, f.dirty = false, false
	if bytes.Equal(f.data, f.server) {
		return // the repository holds these bytes already
	}
	p := h.pathOf(f)
	cp := path.Join(dirOf(p), upload.ConflictName(path.Base(p), h.clk.Now()))
	if h.m.files[cp] != nil {
		h.fail("conflict copy %s of %s exists already", cp, p)
	}
	h.m.files[cp] = &mfile{data: f.data, onServer: true, server: bytes.Clone(f.data), versions: 1, empties: b2i(len(f.data) == 0)}
	f.data = bytes.Clone(f.server)
	h.touched = append(h.touched, cp)
	h.logf("conflict: %s saved as %s", p, cp)
	h.counts["conflict copies"]++
}

// contested tells whether p is a file in conflict with another client's
// change; renames and unlinks leave it alone until it is saved.
func (h *harness) contested(p string) bool {
	f := h.m.files[p]
	return f != nil && f.contested
}

func (h *harness) closeHandle(mh *mhandle) {
	h.flush(mh)
	h.release(mh)
}

// program runs a whole save of p with data the way one program does.
func (h *harness) program(kind int, p string, data []byte) {
	switch kind {
	case 0: // cp, python open/write/close
		mh, _ := h.open(p, true)
		h.write(mh, 0, data)
		h.closeHandle(mh)
	case 1: // bash/dash redirect, dd: open O_TRUNC, dup2, close, write, close
		mh, _ := h.open(p, true)
		h.flush(mh)
		h.write(mh, 0, data)
		h.closeHandle(mh)
	case 2: // >> append
		mh, _ := h.open(p, false)
		h.flush(mh)
		h.write(mh, len(mh.f.data), data)
		h.closeHandle(mh)
	case 3: // : > f
		mh, _ := h.open(p, true)
		h.flush(mh)
		h.closeHandle(mh)
	case 4: // ftruncate then write in one open (python's truncate(0), write)
		mh, _ := h.open(p, false)
		h.noErr(mh.h.Truncate(0), "ftruncate "+p)
		if len(mh.f.data) > 0 {
			mh.f.data, mh.f.dirty, mh.wrote = nil, true, true
		}
		h.write(mh, 0, data)
		h.closeHandle(mh)
	case 5, 6, 7: // temp file + rename over: rsync, LibreOffice, sed -i
		base := path.Base(p)
		tmp := []string{"." + base + ".Xa1b2C", "lu4711.tmp", "sedQ3xZ9k"}[kind-5]
		tp := path.Join(dirOf(p), tmp)
		mh, _ := h.open(tp, true)
		h.write(mh, 0, data)
		h.closeHandle(mh)
		h.rename(tp, p)
	case 8: // vim: x → x~, write x anew, delete x~
		if h.m.files[p] == nil || h.m.files[p].writers > 0 {
			h.program(0, p, data)
			return
		}
		bak := p + "~"
		h.rename(p, bak)
		mh, _ := h.open(p, true)
		h.write(mh, 0, data)
		h.closeHandle(mh)
		h.unlink(bak)
	case 9: // install: unlink, create anew
		if f := h.m.files[p]; f != nil && f.writers == 0 {
			h.unlink(p)
		}
		h.program(0, p, data)
	}
}

// rename renames a file in the core and the model.
func (h *harness) rename(from, to string) {
	h.touched = append(h.touched, from, to)
	src := h.m.files[from]
	before := h.lost()
	h.noErr(h.fs.Rename(from, to), "rename "+from+" → "+to)
	// The rename has returned, so nobody is told when its upload loses
	// the answer. The queue then holds the file as after a failed close.
	defer func() { src.held = src.held || h.lost() > before }()
	tgt := h.m.files[to]
	temp := h.temps.IsTemp(path.Base(to))
	switch {
	case temp && src.onServer:
		// moved aside: vim's backup (only renamed back or deleted here)
		src.onServer = false // the model follows the shadow as a local file
		h.m.unlinked[from] = &mfile{onServer: true, server: src.server, versions: src.versions, empties: src.empties}
		h.m.shadowOf[to] = from
	case tgt != nil && tgt.onServer:
		// the target's document gets the content; the source's own goes
		src.onServer, src.server, src.versions, src.empties = true, tgt.server, tgt.versions, tgt.empties
		tgt.gone = true
		src.dirty = true
		h.m.save(src)
	case tgt == nil && h.m.unlinked[to] != nil && !temp:
		h.m.takeBack(to, src)
		src.dirty = true
		h.m.save(src)
	case !src.onServer:
		if tgt != nil {
			tgt.gone = true
		}
		if !temp {
			src.dirty = true
			h.m.save(src)
		}
	default:
		if tgt != nil {
			tgt.gone = true
		}
	}
	delete(h.m.files, from)
	h.m.files[to] = src
}

func (h *harness) unlink(p string) {
	h.touched = append(h.touched, p)
	f := h.m.files[p]
	h.noErr(h.fs.Unlink(p), "unlink "+p)
	if orig, ok := h.m.shadowOf[p]; ok {
		delete(h.m.shadowOf, p)
		delete(h.m.unlinked, orig) // deleting the backup deletes the moved-aside document (if not taken back)
	} else if f.onServer {
		h.m.unlinked[p] = f
	}
	f.gone = true
	delete(h.m.files, p)
}

// check compares what the target shows at p with the model.
func (h *harness) check(p string) {
	h.t.Helper()
	size, dir, err := h.fs.Stat(p)
	f := h.m.files[p]
	if f == nil {
		if !errors.Is(err, syscall.ENOENT) && !(h.m.dirs[p] && dir) {
			h.fail("%s: want ENOENT, got %v (dir %v)", p, err, dir)
		}
		return
	}
	h.noErr(err, "stat "+p)
	if dir {
		h.fail("%s is a directory, want a file", p)
	}
	if size != int64(len(f.data)) {
		h.fail("%s: size %d, model %d", p, size, len(f.data))
	}
	hd, err := h.fs.OpenRead(p)
	h.noErr(err, "open "+p)
	got := make([]byte, 0, len(f.data))
	buf := make([]byte, 1<<20)
	for {
		n, err := hd.ReadAt(buf, int64(len(got)))
		if err != nil && !errors.Is(err, io.EOF) {
			h.noErr(err, "read "+p)
		}
		if n == 0 {
			break
		}
		got = append(got, buf[:n]...)
	}
	h.noErr(hd.Close(), "close "+p)
	if !bytes.Equal(got, f.data) {
		h.fail("%s: read %d bytes %q…, model %d bytes %q…", p, len(got), head(got), len(f.data), head(f.data))
	}
}

func head(b []byte) []byte { return b[:min(len(b), 12)] }

// checkTree compares every directory listing with the model.
func (h *harness) checkTree() {
	h.t.Helper()
	for d := range h.m.dirs {
		list, err := h.fs.Readdir(d)
		h.noErr(err, "readdir "+d)
		var got, want []string
		for _, name := range list {
			got = append(got, path.Join(d, name))
		}
		sort.Strings(got)
		for p := range h.m.files {
			if dirOf(p) == d {
				want = append(want, p)
			}
		}
		for p := range h.m.dirs {
			if p != "" && dirOf(p) == d {
				want = append(want, p)
			}
		}
		sort.Strings(want)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			h.fail("listing of %q: %v, model %v", d, got, want)
		}
	}
	docs := map[remote.ID]string{}
	for p := range h.m.files {
		h.check(p)
		if h.cfg.DocID == nil {
			continue
		}
		if id := h.cfg.DocID(h.fs, p); id != "" {
			if other, dup := docs[id]; dup {
				h.fail("%s and %s show one document %s", p, other, id)
			}
			docs[id] = p
		}
	}
}

// outside changes the repository through its API, as another client would:
// it adds, replaces, renames and deletes documents this mount has no handle
// or unsaved change on, and replaces documents it has unsaved changes to
// (a conflict). The mount sees it once its listing expires.
func (h *harness) outside() {
	h.drain("sync before the outside writer", h.fs.Sync)
	h.m.synced()
	busy := map[*mfile]bool{}
	for _, mh := range h.m.handles {
		busy[mh.f] = true
	}
	p := h.randomPath()
	if h.rng.IntN(3) == 0 {
		// Often a file with unsaved changes, which a random path rarely is.
		var dirty []string
		for q, f := range h.m.files {
			if f.dirty && f.onServer {
				dirty = append(dirty, q)
			}
		}
		if len(dirty) > 0 {
			sort.Strings(dirty)
			p = dirty[h.rng.IntN(len(dirty))]
		}
	}
	f := h.m.files[p]
	ctx := h.ctx()
	node := func(p string) remote.Node {
		n, err := LookupRepo(ctx, h.repo, p)
		h.noErr(err, "repository lookup "+p)
		return n
	}
	switch {
	case f == nil:
		data := h.content()
		_, err := h.repo.Insert(ctx, node(dirOf(p)).ID, path.Base(p), remotetest.Content(data))
		h.noErr(err, "outside insert "+p)
		h.m.files[p] = &mfile{data: data, onServer: true, server: bytes.Clone(data), versions: 1, empties: b2i(len(data) == 0)}
		h.logf("outside insert %s (%d bytes)", p, len(data))
		h.counts["outside changes"]++
	case f.dirty && f.onServer && !f.gone && h.rng.IntN(2) == 0:
		// Another client saves the document while this mount has
		// unsaved changes to it through an open handle.
		n := node(p)
		data := h.content()
		if !f.contested {
			f.base = f.server
		}
		if bytes.Equal(data, f.base) {
			// The bytes the local change started from would be no
			// change to keep (a repository that names content by its
			// hash cannot tell).
			data = append(data, 'x')
		}
		_, err := h.repo.Replace(ctx, n.ID, n.Token, n.Files[0].Name, remotetest.Content(data))
		h.noErr(err, "outside replace under a local change "+p)
		f.server, f.contested = data, true
		f.versions++
		f.empties += b2i(len(data) == 0)
		h.logf("outside replace %s under a local change (%d bytes)", p, len(data))
		h.counts["outside changes under a local change"]++
	case busy[f] || f.dirty || !f.onServer:
		return
	default:
		n := node(p)
		switch h.rng.IntN(3) {
		case 0:
			data := h.content()
			_, err := h.repo.Replace(ctx, n.ID, n.Token, n.Files[0].Name, remotetest.Content(data))
			h.noErr(err, "outside replace "+p)
			f.data, f.server = data, bytes.Clone(data)
			f.versions++
			f.empties += b2i(len(data) == 0)
			h.logf("outside replace %s (%d bytes)", p, len(data))
			h.counts["outside changes"]++
		case 1:
			to := path.Join(h.randomDir(), fileNames[h.rng.IntN(len(fileNames))])
			if h.m.files[to] != nil {
				return
			}
			_, err := h.repo.Rename(ctx, n.ID, n.Token, node(dirOf(to)).ID, path.Base(to))
			h.noErr(err, "outside rename "+p)
			delete(h.m.files, p)
			h.m.files[to] = f
			h.logf("outside rename %s → %s", p, to)
			h.counts["outside changes"]++
		case 2:
			h.noErr(h.repo.Delete(ctx, n.ID, n.Token), "outside delete "+p)
			delete(h.m.files, p)
			f.gone = true
			h.logf("outside delete %s", p)
			h.counts["outside changes"]++
		}
	}
	h.clk.Advance(2 * time.Minute) // past the listing cache
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// LookupRepo finds a node by its path of names through the Repository
// API (not a mount); the first of several of one name.
func LookupRepo(ctx context.Context, repo remote.Repository, p string) (remote.Node, error) {
	n, err := repo.Root(ctx)
	if err != nil || p == "" {
		return n, err
	}
	for _, name := range strings.Split(p, "/") {
		kids, err := repo.List(ctx, n.ID)
		if err != nil {
			return remote.Node{}, err
		}
		found := false
		for _, k := range kids {
			if k.Name == name {
				n, found = k, true
				break
			}
		}
		if !found {
			return remote.Node{}, fmt.Errorf("%s: %w", p, remote.ErrNotFound)
		}
	}
	return n, nil
}

func (h *harness) logf(format string, args ...any) {
	h.log = append(h.log, fmt.Sprintf("%d: ", h.step)+fmt.Sprintf(format, args...))
	if os.Getenv("DMSFS_REFTEST_ECHO") != "" {
		fmt.Fprintln(os.Stderr, h.log[len(h.log)-1])
	}
}

// checkRepo compares what the repository holds at p with the model, for a
// file whose saves are done (no open writer, no unsaved change).
func (h *harness) checkRepo(p string) {
	h.t.Helper()
	f := h.m.files[p]
	if f == nil || f.writers > 0 || f.dirty || !f.onServer {
		return
	}
	n, err := LookupRepo(h.ctx(), h.repo, p)
	h.noErr(err, "repository lookup "+p)
	vs, err := h.repo.Versions(h.ctx(), n.ID)
	h.noErr(err, "versions "+p)
	if len(vs) != f.versions && !h.repo.Capabilities().VersionsOnPublish {
		var sizes []int64
		for _, v := range vs {
			sizes = append(sizes, v.Files[0].Size)
		}
		h.fail("%s: %d versions in the repository (sizes %v), model %d (%d bytes now)", p, len(vs), sizes, f.versions, len(f.server))
	}
	if got := n.Files[0].Size; got != int64(len(f.server)) {
		h.fail("%s: %d bytes in the repository, model %d", p, got, len(f.server))
	}
}

// one runs one random step.
func (h *harness) one() {
	h.touched = h.touched[:0]
	defer func() {
		for _, p := range h.touched {
			if !h.cfg.EndOnly {
				h.checkRepo(p)
			}
		}
	}()
	p := h.randomPath()
	switch r := h.rng.IntN(100); {
	case r < 40: // a whole program's save
		kind := h.rng.IntN(10)
		if f := h.m.files[p]; f != nil && f.writers > 0 && kind >= 5 {
			kind = 0
		}
		data := h.content()
		h.logf("program %d saves %s (%d bytes, %.3q…)", kind, p, len(data), data)
		h.program(kind, p, data)
		h.check(p)
	case r < 48: // open a handle that stays open
		if len(h.m.handles) >= 4 {
			return
		}
		h.logf("open %s", p)
		mh, _ := h.open(p, false)
		h.m.handles = append(h.m.handles, mh)
	case r < 60: // write through an open handle
		if len(h.m.handles) == 0 {
			return
		}
		mh := h.m.handles[h.rng.IntN(len(h.m.handles))]
		off := h.rng.IntN(len(mh.f.data) + 10)
		data := h.content()
		h.logf("write %d bytes at %d to %s", len(data), off, mh.path)
		h.write(mh, off, data)
	case r < 66: // close an open handle (sometimes fsync first)
		if len(h.m.handles) == 0 {
			return
		}
		mh := h.m.handles[h.rng.IntN(len(h.m.handles))]
		if h.rng.IntN(2) == 0 {
			mh.f.held = h.mayLose("fsync "+mh.path, mh.h.Fsync) || mh.f.held
		}
		h.logf("close %s", mh.path)
		h.closeHandle(mh)
	case r < 70: // truncate by path
		f := h.m.files[p]
		if f == nil {
			return
		}
		size := int64(h.rng.IntN(len(f.data) + 1))
		lost := h.mayLose("truncate "+p, func() error { return h.fs.Truncate(p, size) })
		h.logf("truncate %s to %d", p, size)
		if int(size) != len(f.data) {
			f.data, f.dirty = f.data[:size], true
			if f.writers == 0 {
				h.m.save(f)
			}
		}
		f.held = f.held || lost
		h.check(p)
	case r < 78: // rename a file, maybe over another
		f := h.m.files[p]
		to := path.Join(h.randomDir(), fileNames[h.rng.IntN(len(fileNames))])
		if f == nil || to == p || h.contested(p) || h.contested(to) {
			return
		}
		h.logf("rename %s → %s", p, to)
		h.rename(p, to)
		h.check(p)
		h.check(to)
	case r < 84: // unlink
		if h.m.files[p] == nil || h.contested(p) {
			return
		}
		h.logf("unlink %s", p)
		h.unlink(p)
		h.check(p)
	case r < 88: // mkdir or rmdir
		d := path.Join(h.randomDir(), dirNames[h.rng.IntN(len(dirNames))])
		if strings.Count(d, "/") > 2 {
			return
		}
		if !h.m.dirs[d] {
			h.logf("mkdir %s", d)
			h.noErr(h.fs.Mkdir(d), "mkdir "+d)
			h.m.dirs[d] = true
			return
		}
		empty := true
		for q := range h.m.files {
			empty = empty && !strings.HasPrefix(q, d+"/")
		}
		for q := range h.m.dirs {
			empty = empty && !strings.HasPrefix(q, d+"/")
		}
		h.logf("rmdir %s (empty: %v)", d, empty)
		err := h.fs.Rmdir(d)
		if !empty {
			if !errors.Is(err, syscall.ENOTEMPTY) {
				h.fail("rmdir %s: want ENOTEMPTY, got %v", d, err)
			}
			return
		}
		h.noErr(err, "rmdir "+d)
		delete(h.m.dirs, d)
		for q := range h.m.unlinked {
			if strings.HasPrefix(q, d+"/") {
				delete(h.m.unlinked, q)
			}
		}
	case r < 94:
		h.outside()
	case r < 95: // remount
		h.logf("remount")
		for len(h.m.handles) > 0 {
			h.closeHandle(h.m.handles[0])
		}
		h.remount()
		h.m.synced()
	case r < 96: // a stop that leaves the queue in the spool (a crash)
		if len(h.m.unlinked) > 0 || len(h.m.shadowOf) > 0 {
			// The deferred deletions of unlinked documents are not
			// journaled (SEMANTICS: an unlink within --unlink-grace of a
			// crash is undone); the model has no such undo.
			return
		}
		h.logf("restart without draining the queue")
		for len(h.m.handles) > 0 {
			h.closeHandle(h.m.handles[0])
		}
		for _, f := range h.m.files {
			if f.held {
				h.counts["restarts with a save held"]++
				break
			}
		}
		// The next mount replays what the queue held before it serves
		// (core.FS.replay), with no answer lost meanwhile.
		h.drain("restart", h.fs.Restart)
		h.counts["restarts"]++
	default:
		h.check(p)
	}
}

// repoTree lists the repository's documents as path=id, through its API
// (which leaves the mount as it is).
func (h *harness) repoTree() string {
	var out []string
	var walk func(id remote.ID, p string)
	walk = func(id remote.ID, p string) {
		kids, _ := h.repo.List(h.ctx(), id)
		for _, k := range kids {
			kp := path.Join(p, k.Name)
			if k.Kind == remote.KindFolder {
				walk(k.ID, kp)
			} else {
				c := ""
				if len(k.Files) > 0 {
					c = fmt.Sprintf("%.6s/%d", k.Files[0].ContentID, k.Files[0].Size)
				}
				out = append(out, fmt.Sprintf("%s=%s:%s", kp, k.ID, c))
			}
		}
	}
	root, _ := h.repo.Root(h.ctx())
	walk(root.ID, "")
	sort.Strings(out)
	return strings.Join(out, " ")
}

// verify compares the repository with the model.
func (h *harness) verify() {
	ctx := h.ctx()
	for len(h.m.handles) > 0 {
		mh := h.m.handles[0]
		h.logf("close %s (at the end)", mh.path)
		h.closeHandle(mh)
	}
	h.logf("settle (at the end)")
	h.drain("settle", h.fs.Settle)
	h.m.synced()
	h.checkTree()
	seen := map[string]bool{}
	var walk func(id remote.ID, p string)
	walk = func(id remote.ID, p string) {
		kids, err := h.repo.List(ctx, id)
		h.noErr(err, "list "+p)
		for _, k := range kids {
			kp := path.Join(p, k.Name)
			if k.Kind == remote.KindFolder {
				if !h.m.dirs[kp] {
					h.fail("repository has folder %s the model lacks", kp)
				}
				walk(k.ID, kp)
				continue
			}
			if seen[kp] {
				h.fail("repository has two documents at %s", kp)
			}
			seen[kp] = true
			f := h.m.files[kp]
			if f == nil {
				h.fail("repository has document %s the model lacks", kp)
			}
			vs, err := h.repo.Versions(ctx, k.ID)
			h.noErr(err, "versions "+kp)
			empties := 0
			for _, v := range vs {
				if len(v.Files) == 1 && v.Files[0].Size == 0 {
					empties++
				}
			}
			if (len(vs) != f.versions || empties != f.empties) && !h.repo.Capabilities().VersionsOnPublish {
				h.fail("%s: %d versions (%d empty) in the repository, model %d (%d empty)", kp, len(vs), empties, f.versions, f.empties)
			}
			rc, err := h.repo.Open(ctx, k.ID, k.Files[0].Name, 0, -1)
			h.noErr(err, "open "+kp)
			var b bytes.Buffer
			_, err = b.ReadFrom(rc)
			rc.Close()
			h.noErr(err, "read "+kp)
			if !bytes.Equal(b.Bytes(), f.data) {
				h.fail("%s: repository holds %d bytes, model %d", kp, b.Len(), len(f.data))
			}
		}
	}
	root, err := h.repo.Root(ctx)
	h.noErr(err, "root")
	walk(root.ID, "")
	for p := range h.m.files {
		if !seen[p] {
			h.fail("model has %s, the repository does not", p)
		}
	}
}

// Run runs one seeded sequence and verifies the repository at its end.
func Run(t testing.TB, cfg Config) {
	h := &harness{t: t, cfg: cfg, counts: map[string]int{}, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x5eed)), repo: cfg.Repo,
		clk: NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)),
		m:   &model{files: map[string]*mfile{}, dirs: map[string]bool{"": true}, unlinked: map[string]*mfile{}, shadowOf: map[string]string{}}}
	var err error
	h.temps, err = core.NewTempMatcher(core.DefaultTempPatterns, true)
	if err != nil {
		t.Fatal(err)
	}
	h.fs = cfg.Target(h.clk.Now)
	defer func() {
		if t.Failed() {
			t.Logf("seed %d failed; replay with DMSFS_SEED=%d", cfg.Seed, cfg.Seed)
		}
	}()
	trace := os.Getenv("DMSFS_REFTEST_TRACE") != ""
	for h.step = 0; h.step < cfg.Ops; h.step++ {
		h.one()
		if trace {
			h.logf("repository: %s", h.repoTree())
		}
		if h.step%50 == 49 {
			h.checkTree()
		}
	}
	h.verify()
	t.Logf("seed %d: %d steps; outside changes %d, of them under a local change %d; conflict copies %d; saves whose answer was lost %d; restarts %d, with a save held %d",
		cfg.Seed, cfg.Ops, h.counts["outside changes"]+h.counts["outside changes under a local change"],
		h.counts["outside changes under a local change"], h.counts["conflict copies"], h.counts["saves whose answer was lost"],
		h.counts["restarts"], h.counts["restarts with a save held"])
}

// Seeds are the runs a test makes: DMSFS_SEED's alone, or n seeds from
// the clock; ops is DMSFS_REFTEST_OPS or def.
func Seeds(n, def int) (seeds []uint64, ops int) {
	ops = def
	if s := os.Getenv("DMSFS_REFTEST_OPS"); s != "" {
		ops, _ = strconv.Atoi(s)
	}
	if s := os.Getenv("DMSFS_SEED"); s != "" {
		seed, _ := strconv.ParseUint(s, 10, 64)
		return []uint64{seed}, ops
	}
	base := uint64(time.Now().UnixNano())
	for i := range uint64(n) {
		seeds = append(seeds, base+i)
	}
	return seeds, ops
}
