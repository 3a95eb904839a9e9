// Package core is what the dmsfs filesystem means, without FUSE: folders
// and documents as directories and files, open handles, when a close is a
// save, rename-over and temp-file saves, the listing and attribute cache.
// The go-fuse adapter (package fs) only translates kernel calls to these
// methods and errors to errnos; the tests here need no /dev/fuse.
//
// # Lock order
//
//  0. poller.mu: held for a whole change-poll round (poll.go), across its
//     repository calls and the listings it runs; taken before all others.
//  1. Dir.nsMu: serialises the namespace changes of one directory (create,
//     mkdir, unlink, rmdir, rename) and is held across their repository
//     calls. Lookups, listings and attributes never take it. Two are taken
//     only by lockDirs, in inode order.
//  2. Dir.mu: the directory's cached state. Never held across a
//     repository call.
//  3. File.mu: the file's state. Never held across a repository call or a
//     download; an upload or download under way is a state (File.busy)
//     that writers wait out on File.cond.
//     Versions.mu and Renditions.mu (a view node's state) are of this
//     level too, with only leaf locks under them; Versions.mu is held
//     across the history request (one at a time), Renditions.mu never
//     across a call.
//  4. Leaf locks, under which nothing else is taken: docRef.mu, Dir.amu,
//     FS.treeMu, FS.errMu, FS.tree.mu (the kept-tree writer), FS.edits.mu,
//     the upload queue's.
//
// Never two locks of one level at once, except through lockDirs.
package core

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dmsfs/dmsfs/cache"
	"github.com/dmsfs/dmsfs/fs/upload"
	"github.com/dmsfs/dmsfs/remote"
)

// Options configure the filesystem.
type Options struct {
	// DirCacheTime is how long listings and attributes are trusted.
	DirCacheTime time.Duration
	// PollInterval is how often the repository is asked what other
	// clients changed (poll.go); 0: never, listings expire after
	// DirCacheTime.
	PollInterval time.Duration
	// WriteBack, when > 0, makes close return once the data is durable in
	// the spool, and uploads it after this delay. With 0, close returns
	// after the repository confirmed the upload.
	WriteBack time.Duration
	// UnlinkGrace is how long an unlinked document stays on the server,
	// hidden, so that a new file of the same name (install, some editors)
	// becomes its next version instead of a new document. 2 s if 0;
	// negative: deleted at once.
	UnlinkGrace time.Duration
	// ReadOnly refuses every change with EROFS.
	ReadOnly bool
	// NoKernelCache makes the kernel keep no entries and attributes (it
	// asks the filesystem at every access) whatever DirCacheTime is;
	// tests whose clock is not the kernel's use it.
	NoKernelCache bool
	// ShowVersions lists .versions in directory listings.
	ShowVersions bool
	// TempPatterns are the names kept local (DefaultTempPatterns if nil).
	TempPatterns []string
	// CacheSize bounds the in-memory block cache, in bytes.
	CacheSize int64
	// ReadAhead is the most a sequential read fetches ahead, in bytes: its
	// window starts at 4 MiB and doubles with the bytes read in sequence up
	// to this (64 MiB if 0; at most half of CacheSize).
	ReadAhead int64
	// PrefetchListings is how many subfolder listings are fetched ahead at
	// once, PrefetchFiles how many small files (8 if 0; negative: none).
	PrefetchListings, PrefetchFiles int
	// Transfers is how many queued uploads of big files run at once (4 if
	// 0); small ones run up to upload.SmallFactor times as many.
	Transfers int
	// NoPassthrough keeps the kernel from reading content kept whole on
	// disk straight from there (FUSE passthrough, where the kernel and
	// the mount's privileges allow it; otherwise it is not used anyway).
	NoPassthrough bool
	// DiskCacheSize bounds the disk cache of whole contents read from
	// start to end (cache.Disk, in <cache dir>/content); 0: none. Off by
	// default: on 2 cores the copy costs a cold read over a network up
	// to half its speed.
	DiskCacheSize int64
	// PinLimit bounds the disk pinned content may use (dmsfs pin); 0: the
	// disk is the limit.
	PinLimit int64
	// SpoolLimit bounds the disk the spool (changed files not uploaded
	// yet, and local copies of files open for writing) may use; writes
	// beyond it fail with ENOSPC. 0: only the disk bounds it.
	SpoolLimit int64
	// UID and GID own the files whose owner was not set locally.
	UID, GID uint32
	Logger   *slog.Logger
	// Now is the clock (time.Now if nil); tests inject one.
	Now func() time.Time
	// QueueTick is how often the upload queue looks for due uploads
	// (250 ms if 0); tests with an injected clock call FS.Poll instead.
	QueueTick time.Duration
}

// FS is the filesystem. Create it with New.
type FS struct {
	// repo is the repository as the core calls it (tracked: availability
	// noted, offline calls failed at once); inner is the repository itself.
	repo   remote.Repository
	inner  remote.Repository
	avail  availability
	stop   chan struct{} // closed by Close
	caps   remote.Capabilities
	opts   Options
	log    *slog.Logger
	now    func() time.Time
	spool  *cache.Spool
	blocks *cache.Blocks
	temps  *TempMatcher
	queue  *upload.Queue
	sender *upload.Sender
	root   *Dir
	meter  *spoolMeter
	inos   atomic.Uint64 // the last inode number given out
	// seq orders listings and this mount's changes of files: see
	// File.changed.
	seq atomic.Uint64

	// changes counts uploads made through this mount; caches of version
	// histories are stale once it moved.
	changes atomic.Uint64
	// edits numbers the changes of documents' content, for the reads
	// that overlapped one (edits.go).
	edits edits
	// attrGen counts changes of the local attributes (mode, owner, mtime)
	// of documents on the server: a File showing one re-reads its own
	// from the spool at its next listing once it moved (File.refresh),
	// so that a document's paths agree.
	attrGen atomic.Uint64
	// conflicts and uploadFailures count conflict copies made and failed
	// uploads, passOpens passed-through opens, reads the reads of
	// repository content served, for Stats.
	conflicts, uploadFailures, passOpens, reads atomic.Uint64

	// poll is the change poller's state (poll.go).
	poll poller
	// pins are the pinned paths (pin.go).
	pins pins
	// tree writes the kept listings (tree.go).
	tree treeWriter
	// searches counts the .search views made (search.go).
	searches atomic.Int64
	// prefetch bounds the listings fetched ahead (Dir.prefetchSubfolders),
	// aheadFiles the small files (Dir.readAhead).
	prefetch, aheadFiles chan struct{}

	// treeMu guards every Dir's parent and name (leaf lock).
	treeMu sync.RWMutex

	errMu  sync.Mutex
	errors []ErrorEntry // the last errors, newest last; guarded by errMu

	// handlesMu (leaf) guards handles, the open handles, and released,
	// closed and replaced whenever one is released.
	handlesMu sync.Mutex
	handles   map[*Handle]struct{}
	released  chan struct{}
}

// ErrorEntry is one failure shown by `dmsfs status`.
type ErrorEntry struct {
	Time    time.Time `json:"time"`
	Path    string    `json:"path"`
	Op      string    `json:"op"`
	Message string    `json:"message"`
}

// New makes the filesystem over repo with the spool in spool. It replays the
// journal of an earlier mount before it returns.
func New(ctx context.Context, repo remote.Repository, spool *cache.Spool, opts Options) (*FS, error) {
	if opts.DirCacheTime <= 0 {
		opts.DirCacheTime = 30 * time.Second
	}
	switch {
	case opts.UnlinkGrace == 0:
		opts.UnlinkGrace = 2 * time.Second
	case opts.UnlinkGrace < 0:
		opts.UnlinkGrace = 0
	}
	if opts.CacheSize <= 0 {
		opts.CacheSize = 256 << 20
	}
	if opts.ReadAhead <= 0 {
		opts.ReadAhead = 64 << 20
	}
	// A window beyond half the cache would evict its own blocks before
	// they are read.
	opts.ReadAhead = min(opts.ReadAhead, max(opts.CacheSize/2, cache.BlockSize))
	opts.PrefetchListings = orDefault(opts.PrefetchListings, 8)
	opts.PrefetchFiles = orDefault(opts.PrefetchFiles, 8)
	opts.Transfers = orDefault(opts.Transfers, 4)
	if opts.TempPatterns == nil {
		opts.TempPatterns = DefaultTempPatterns
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	temps, err := NewTempMatcher(opts.TempPatterns, true)
	if err != nil {
		return nil, fmt.Errorf("temp pattern: %w", err)
	}
	// Four range requests at once: on 2 cores, with server and mount on
	// one machine, 2–4 read a cold 1 GiB file in ~1.0 s, 8 in 1.2 s and
	// 16 in 1.5 s (scripts/bench.sh); four in flight still fill a link
	// of 400 MB/s at 10 ms round trip.
	blocks, err := cache.NewBlocks(opts.CacheSize, 4)
	if err != nil {
		return nil, err
	}
	blocks.UseClock(opts.Now)
	if opts.DiskCacheSize > 0 {
		disk, err := cache.OpenDisk(filepath.Join(spool.Dir(), "content"), opts.DiskCacheSize)
		if err != nil {
			blocks.Close()
			return nil, err
		}
		blocks.UseDisk(disk)
	}
	f := &FS{inner: repo, caps: repo.Capabilities(), opts: opts, log: opts.Logger, now: opts.Now, stop: make(chan struct{}),
		spool: spool, blocks: blocks, temps: temps, handles: map[*Handle]struct{}{}, released: make(chan struct{})}
	rootNode, err := f.rootNode(ctx, func() (remote.Node, error) { return repo.Root(ctx) })
	if err != nil {
		blocks.Close()
		return nil, fmt.Errorf("repository root: %w", err)
	}
	f.poll.stop = make(chan struct{})
	f.prefetch = make(chan struct{}, opts.PrefetchListings)
	f.aheadFiles = make(chan struct{}, opts.PrefetchFiles)
	f.repo = &tracked{Repository: repo, fsys: f}
	f.loadPins()
	f.inos.Store(1) // the root is 1
	f.sender = &upload.Sender{Repo: f.repo, Log: f.log, Now: f.now, Notes: spool}
	if err := f.sender.Load(); err != nil {
		f.log.Warn("an earlier mount's notes of lost answers are gone; a replayed save may become a conflict copy", "err", err)
	}
	if opts.SpoolLimit > 0 {
		f.meter = &spoolMeter{dir: spool.Dir(), limit: opts.SpoolLimit, used: diskUse(spool.Dir())}
	}
	if f.caps.ReadOnly {
		f.opts.ReadOnly = true
	}
	f.root = newDir(f, rootNode, nil)
	f.root.ino = 1
	f.queue = upload.New(upload.Options{Now: f.now, Logger: f.log, Tick: opts.QueueTick, Workers: opts.Transfers,
		OnError: func(p string, err error) {
			f.uploadFailures.Add(1)
			if errors.Is(err, remote.ErrUnavailable) && !f.Offline().IsZero() {
				return // offline: kept, as status says; no failure to report
			}
			f.fail("upload", p, err)
		}})
	if err := f.replay(ctx); err != nil {
		f.queue.Stop()
		blocks.Close()
		return nil, err
	}
	go f.watchAvailability(f.stop)
	return f, nil
}

// Root is the root directory.
func (f *FS) Root() *Dir { return f.root }

// ReadOnly tells whether every change is refused.
func (f *FS) ReadOnly() bool { return f.opts.ReadOnly }

// Options are the options in effect (defaults filled in).
func (f *FS) Options() Options { return f.opts }

func (f *FS) nextIno() uint64 { return f.inos.Add(1) }

// Close stops background uploads (what is left stays in the spool), moves
// the bytes of refused uploads to lost+found and frees the cache. Call Sync
// first to upload everything.
func (f *FS) Close() {
	f.stopPolling()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	f.flushTree(ctx)
	cancel()
	f.tree.wait()
	select {
	case <-f.stop:
	default:
		close(f.stop)
	}
	f.queue.Stop()
	f.SaveRefused()
	f.blocks.Close()
}

// Sync uploads everything pending now and waits until the queue is empty
// or ctx ends, calling progress whenever the queue changes. Uploads the
// repository refused for good do not hold it up: they end it with an
// error that names them (upload.ErrRefused).
func (f *FS) Sync(ctx context.Context, progress func(upload.Status)) error {
	err := f.queue.Drain(ctx, progress)
	if errors.Is(err, upload.ErrRefused) {
		return fmt.Errorf("%w\nthe bytes stay in the mount until unmount, then in %s", err, f.LostFound())
	}
	return err
}

// Settle waits until no descriptor that wrote unsaved changes is open
// any more (the kernel sends a file's release after close returns, and a
// release may still save), then Syncs. Tests use it to see what the
// repository holds once every program closed its files.
func (f *FS) Settle(ctx context.Context) error {
	for {
		f.handlesMu.Lock()
		open := make([]*Handle, 0, len(f.handles))
		for h := range f.handles {
			open = append(open, h)
		}
		released := f.released
		f.handlesMu.Unlock()
		unsaved := false
		for _, h := range open {
			if h.write && h.f.unsaved() {
				unsaved = true
				break
			}
		}
		if !unsaved {
			return f.Sync(ctx, nil)
		}
		select {
		case <-released:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// WaitHandles waits until at most n handles are open: the kernel sends a
// release after close(2) has returned, and tests that count on what a
// release saves wait for it.
func (f *FS) WaitHandles(ctx context.Context, n int) error {
	for {
		f.handlesMu.Lock()
		open, released := len(f.handles), f.released
		f.handlesMu.Unlock()
		if open <= n {
			return nil
		}
		select {
		case <-released:
		case <-ctx.Done():
			return fmt.Errorf("%d handles still open: %w", open, ctx.Err())
		}
	}
}

func (f *FS) opened(h *Handle) {
	f.handlesMu.Lock()
	f.handles[h] = struct{}{}
	f.handlesMu.Unlock()
}

func (f *FS) closed(h *Handle) {
	f.handlesMu.Lock()
	delete(f.handles, h)
	close(f.released)
	f.released = make(chan struct{})
	f.handlesMu.Unlock()
}

// Poll runs the uploads that are due by the injected clock, and returns
// when they are done.
func (f *FS) Poll() { f.queue.Poll() }

// Status is what `dmsfs status` shows.
type Status struct {
	Queue      upload.Status `json:"queue"`
	CacheUsed  int64         `json:"cache_used"`
	CacheSize  int64         `json:"cache_size"`
	CacheDir   string        `json:"cache_dir"`
	WriteBack  string        `json:"write_back"`
	LastErrors []ErrorEntry  `json:"last_errors"`
	// OfflineSince is when the repository stopped answering (zero: it
	// answers); OfflineMisses counts reads of content not held here that
	// failed for it.
	OfflineSince  time.Time `json:"offline_since,omitzero"`
	OfflineMisses uint64    `json:"offline_misses"`
}

// Status reports the upload queue, cache use and the last errors.
func (f *FS) Status() Status {
	f.errMu.Lock()
	errs := append([]ErrorEntry(nil), f.errors...)
	f.errMu.Unlock()
	wb := "off (close waits for the upload)"
	if f.opts.WriteBack > 0 {
		wb = f.opts.WriteBack.String()
	}
	return Status{Queue: f.queue.Status(), CacheUsed: f.blocks.Used(), CacheSize: f.blocks.Capacity(),
		CacheDir: f.spool.Dir(), WriteBack: wb, LastErrors: errs,
		OfflineSince: f.Offline(), OfflineMisses: f.avail.misses.Load()}
}

// Stats are counters and levels for monitoring (dmsfs --metrics-addr).
type Stats struct {
	CacheHits, CacheMisses, CacheEvicted uint64
	CacheBytes                           int64
	SpoolBytes                           int64 // disk the spool uses
	QueueFiles                           int   // uploads waiting
	QueueBytes                           int64
	Refused                              int    // uploads refused for good
	UploadFailures                       uint64 // failed upload attempts so far
	Conflicts                            uint64 // conflict copies made so far
	PollRounds                           uint64 // change polls of the repository so far
	DiskCacheBytes                       int64  // whole contents kept on disk (cache.Disk)
	PassthroughOpens                     uint64 // opens passed through to a local copy so far
	Reads                                uint64 // reads of repository content the daemon served so far
}

// Stats reads the counters; the spool's disk use is measured, which walks
// its directory.
func (f *FS) Stats() Stats {
	q := f.queue.Status()
	hits, misses, evicted := f.blocks.Stats()
	st := Stats{CacheHits: hits, CacheMisses: misses, CacheEvicted: evicted, CacheBytes: f.blocks.Used(),
		SpoolBytes: diskUse(f.spool.Dir()), QueueFiles: q.Files, QueueBytes: q.Bytes, Refused: len(q.Refused),
		UploadFailures: f.uploadFailures.Load(), Conflicts: f.conflicts.Load(), PollRounds: f.PollRounds(),
		PassthroughOpens: f.passOpens.Load(), Reads: f.reads.Load()}
	if d := f.blocks.Disk(); d != nil {
		st.DiskCacheBytes = d.Used()
	}
	return st
}

// fail logs a failure of op on path and keeps it for Status. It returns
// err, so that callers can write `return f.fail(…)`.
func (f *FS) fail(op, p string, err error) error {
	if ordinary(err) {
		f.log.Debug("operation answered", "op", op, "path", p, "err", err)
		return err // ordinary answers, not failures
	}
	f.log.Error("operation failed", "op", op, "path", p, "err", err)
	f.errMu.Lock()
	f.errors = append(f.errors, ErrorEntry{Time: f.now(), Path: p, Op: op, Message: err.Error()})
	if len(f.errors) > 20 {
		f.errors = f.errors[len(f.errors)-20:]
	}
	f.errMu.Unlock()
	return err
}

// ordinary tells answers (not found, exists, not empty) from failures.
func ordinary(err error) bool {
	for _, kind := range []error{remote.ErrNotFound, remote.ErrExist, remote.ErrNotEmpty, syscall.ENOENT, syscall.EEXIST, syscall.ENOTEMPTY} {
		if errors.Is(err, kind) {
			return true
		}
	}
	return false
}

// docRef is a document's identity and concurrency token, shared by the nodes
// that show it: a file node, or a document directory and its files.
type docRef struct {
	id remote.ID
	mu sync.Mutex // leaf lock; guards token
	// token is the latest concurrency token known for the document.
	token string
}

func newDocRef(n remote.Node) *docRef { return &docRef{id: n.ID, token: n.Token} }

func (d *docRef) getToken() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.token
}

func (d *docRef) setToken(t string) {
	d.mu.Lock()
	d.token = t
	d.mu.Unlock()
}

// opContext bounds one remote operation started by the kernel: an
// interrupted syscall must not leave a half-done change behind.
func opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 10*time.Minute)
}

func (f *FS) attrKey(doc remote.ID, file string) string { return "f/" + string(doc) + "/" + file }

func join(dir, name string) string { return path.Join(dir, name) }

// FS is the filesystem the directory belongs to.
func (d *Dir) FS() *FS { return d.fsys }

// orDefault is n, or def where n is 0, or 0 where n is negative (none).
func orDefault(n, def int) int {
	switch {
	case n == 0:
		return def
	case n < 0:
		return 0
	}
	return n
}
