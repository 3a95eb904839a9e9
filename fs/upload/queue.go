// Package upload is dmsfs's upload queue: it schedules the uploads that do
// not happen inside close (write-back, retries of failed ones, journal
// records of an earlier mount), retries transient failures with backoff,
// takes permanent ones out of the queue, and resolves what an upload finds
// on the server (Send: stale tokens, conflicts, deleted documents, answers
// that were lost).
//
// Lock order: an Item's own locks before Queue.mu. The queue never holds mu
// while it calls an Item.
package upload

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/dmsfs/dmsfs/internal/backoff"
	"github.com/dmsfs/dmsfs/remote"
)

// Item is something the queue uploads: a file with local changes, or a
// journal record an earlier mount left behind.
type Item interface {
	// Upload sends the item's current content. It returns nil when the
	// repository has it (or nothing is left to send).
	Upload(ctx context.Context) error
}

// Options configure a Queue.
type Options struct {
	// Workers is how many uploads of big files (over SmallFile) run at
	// once (4 if 0); uploads of small files, whose time is round trips
	// rather than bytes, run up to SmallFactor times as many in all.
	Workers int
	// Retry is the backoff after failures (1 s doubling to 5 min if zero).
	Retry backoff.Policy
	// Now is the clock (time.Now if nil).
	Now func() time.Time
	// Tick is how often the queue looks for due uploads (250 ms if 0).
	Tick time.Duration
	// OnError is told of every failed attempt (for `dmsfs status`).
	OnError func(path string, err error)
	Logger  *slog.Logger
}

// Queue runs uploads. Create it with New; Stop ends it.
type Queue struct {
	opts Options
	log  *slog.Logger

	mu      sync.Mutex
	items   map[Item]*pending // waiting or under way; guarded by mu
	refused map[Item]*pending // refused for good; guarded by mu
	// inflight are uploads made outside the queue (a close that uploads
	// itself), for Status and Drain; guarded by mu.
	inflight map[Item]*pending
	busy     int           // uploads under way; guarded by mu
	busyBig  int           // of them, of big files; guarded by mu
	changed  chan struct{} // closed and replaced whenever the queue changes; guarded by mu

	// running counts the uploads under way; Stop waits for them. Once
	// stopped (guarded by mu) none start.
	running sync.WaitGroup
	stopped bool

	wake chan struct{}
	quit chan struct{}
	done chan struct{}
}

type pending struct {
	at      time.Time
	tries   int
	path    string
	size    int64
	lastErr string
	running bool
	// again: scheduled again while running; the entry stays after this run.
	again bool
}

// SmallFile is the largest upload that counts as small, and SmallFactor
// how many times Workers small uploads may run at once: copying many
// small files in is bound by the repository's answer time per file (an
// Axelor document is two requests in series), which more at once hide,
// while big files share the bandwidth whatever their number. (100 files
// of 20 KiB at 20 ms per request, until all were confirmed: 0.54 s at 16
// at once, 0.43 s at 32, where Axelor creates the documents of uploads
// that end together in one request.)
const (
	SmallFile   = 1 << 20
	SmallFactor = 8
)

// Status is the state of the queue.
type Status struct {
	Files int   `json:"files"`
	Bytes int64 `json:"bytes"`
	// Sent is how much of Bytes the uploads under way sent so far.
	Sent    int64  `json:"sent"`
	Failing int    `json:"failing"`
	Items   []Info `json:"items,omitempty"`
	// Refused are uploads the repository refused for good; they are not
	// retried, and their bytes stay in the mount (then in lost+found).
	Refused []Info `json:"refused,omitempty"`
}

// Info is one pending or refused upload.
type Info struct {
	Path      string    `json:"path"`
	Size      int64     `json:"size"`
	Due       time.Time `json:"due"`
	Tries     int       `json:"tries"`
	LastError string    `json:"last_error,omitempty"`
	// Running: being uploaded now; Sent is how far it got.
	Running bool  `json:"running,omitempty"`
	Sent    int64 `json:"sent,omitempty"`
}

// New starts a queue.
func New(opts Options) *Queue {
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.Retry.Base == 0 {
		opts.Retry = backoff.Policy{Base: time.Second, Max: 5 * time.Minute, Jitter: true}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Tick <= 0 {
		opts.Tick = 250 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	q := &Queue{opts: opts, log: opts.Logger, items: map[Item]*pending{}, refused: map[Item]*pending{}, inflight: map[Item]*pending{},
		changed: make(chan struct{}), wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	go q.loop()
	return q
}

// signal tells Drain that something changed (mu held).
func (q *Queue) signal() {
	close(q.changed)
	q.changed = make(chan struct{})
}

// entry returns it's entry, adding it (mu held). path and size describe it
// for Status: where it is in the mount and how big.
func (q *Queue) entry(it Item, path string, size int64) *pending {
	p := q.items[it]
	if p == nil {
		p = &pending{}
		q.items[it] = p
	}
	delete(q.refused, it) // a new save of a refused file tries again
	p.path, p.size = path, size
	return p
}

// Schedule queues it's upload after delay (again, if it is queued).
func (q *Queue) Schedule(it Item, path string, size int64, delay time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	p := q.entry(it, path, size)
	p.at = q.opts.Now().Add(delay)
	if p.running {
		p.again = true
	}
	q.signal()
	if delay <= 0 {
		q.poke()
	} else if delay < q.opts.Tick {
		// Due before the next tick: a cp of many files with a short
		// --write-back starts uploading at once, not a tick later.
		time.AfterFunc(delay, q.poke)
	}
}

// Failed records a failed upload of it made outside the queue (a close
// that uploads itself); it is retried after the backoff, or, when the
// failure is permanent, taken out of the queue.
func (q *Queue) Failed(it Item, path string, size int64, err error) {
	q.mu.Lock()
	p := q.entry(it, path, size)
	q.mu.Unlock()
	q.finish(it, p, err)
}

// Cancel drops it from the queue (the file was deleted).
func (q *Queue) Cancel(it Item) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.items, it)
	delete(q.refused, it)
	q.signal()
}

// Held tells whether it waits for an upload or was refused: either way
// nothing but a new save should send it again.
func (q *Queue) Held(it Item) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	_, queued := q.items[it]
	_, refused := q.refused[it]
	return queued || refused
}

// State tells whether it waits for an upload (with the last error, if
// it failed before) or was refused (with the reason).
func (q *Queue) State(it Item) (queued, refused bool, reason string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if p, ok := q.refused[it]; ok {
		return false, true, p.lastErr
	}
	if p, ok := q.items[it]; ok {
		return true, false, p.lastErr
	}
	return false, false, ""
}

func (q *Queue) poke() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Stop ends the queue; what is not uploaded stays with its items.
func (q *Queue) Stop() {
	close(q.quit)
	<-q.done
}

func (q *Queue) loop() {
	defer close(q.done)
	defer func() {
		q.mu.Lock()
		q.stopped = true
		q.mu.Unlock()
		q.running.Wait() // the uploads under way end before Stop returns
	}()
	tick := time.NewTicker(q.opts.Tick)
	defer tick.Stop()
	for {
		select {
		case <-q.quit:
			return
		case <-tick.C:
		case <-q.wake:
		}
		q.runDue()
	}
}

// Poll runs what is due now and returns when it is done; tests with an
// injected clock call it instead of waiting for the ticker.
func (q *Queue) Poll() {
	for {
		q.runDue()
		q.mu.Lock()
		changed, busy := q.changed, q.busy
		q.mu.Unlock()
		if busy == 0 {
			return
		}
		<-changed
	}
}

// runDue starts what is due, oldest first, while fewer uploads run than
// may (Workers big ones, SmallFactor times as many in all); each that
// ends wakes the loop to start the next. With write-back, copying many
// small files is bound by the server's answer time per file, so the
// workers are kept busy rather than filled in rounds.
func (q *Queue) runDue() {
	now := q.opts.Now()
	q.mu.Lock()
	free := q.opts.Workers*SmallFactor - q.busy
	bigFree := min(q.opts.Workers-q.busyBig, free)
	if q.stopped {
		free, bigFree = 0, 0 // what did not start stays queued
	}
	// The oldest due small and big items, each by insertion into a short
	// sorted list (a scan per finished upload, never a sort of a long
	// queue), then merged oldest first.
	var small, big []Item
	for it, p := range q.items {
		if free <= 0 || p.running || p.at.After(now) {
			continue
		}
		if p.size > SmallFile {
			big = q.insertOldest(big, it, bigFree)
		} else {
			small = q.insertOldest(small, it, free)
		}
	}
	due := make([]Item, 0, len(small)+len(big))
	for len(due) < free && (len(small) > 0 || len(big) > 0) {
		if len(big) == 0 || len(small) > 0 && q.items[small[0]].at.Before(q.items[big[0]].at) {
			due, small = append(due, small[0]), small[1:]
		} else {
			due, big = append(due, big[0]), big[1:]
		}
	}
	bigs := make([]bool, len(due))
	for i, it := range due {
		p := q.items[it]
		p.running, bigs[i] = true, p.size > SmallFile
		if bigs[i] {
			q.busyBig++
		}
	}
	q.busy += len(due)
	q.running.Add(len(due))
	q.mu.Unlock()

	for i, it := range due {
		big := bigs[i]
		go func() {
			defer q.running.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
			defer cancel()
			err := it.Upload(ctx)
			q.mu.Lock()
			p := q.items[it]
			q.mu.Unlock()
			if p != nil {
				q.finish(it, p, err)
			}
			// Not busy only once the outcome is recorded: Poll and Drain
			// then see it.
			q.mu.Lock()
			q.busy--
			if big {
				q.busyBig--
			}
			q.signal()
			q.mu.Unlock()
			q.poke()
		}()
	}
}

// insertOldest puts it into list, sorted by due time, keeping at most n
// (mu held).
func (q *Queue) insertOldest(list []Item, it Item, n int) []Item {
	at := q.items[it].at
	i := sort.Search(len(list), func(i int) bool { return at.Before(q.items[list[i]].at) })
	if i >= n {
		return list
	}
	if len(list) < n {
		list = append(list, nil)
	}
	copy(list[i+1:], list[i:len(list)-1])
	list[i] = it
	return list
}

// finish takes the outcome of one upload of it.
func (q *Queue) finish(it Item, p *pending, err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	defer q.signal()
	p.running = false
	if q.items[it] != p {
		return // cancelled meanwhile
	}
	if err == nil {
		if p.again {
			p.again = false
			return // saved again while uploading: the entry stays, due as scheduled
		}
		delete(q.items, it)
		return
	}
	p.again = false
	p.tries++
	p.lastErr = err.Error()
	if q.opts.OnError != nil {
		q.opts.OnError(p.path, err)
	}
	if remote.Permanent(err) {
		delete(q.items, it)
		q.refused[it] = p
		q.log.Error("upload refused for good; not retried, the bytes are kept", "path", p.path, "err", err)
		return
	}
	p.at = q.opts.Now().Add(q.opts.Retry.Delay(p.tries))
}

// Status reports what is queued and what was refused.
func (q *Queue) Status() Status {
	q.mu.Lock()
	defer q.mu.Unlock()
	var s Status
	add := func(it Item, p *pending) {
		s.Files++
		s.Bytes += p.size
		if p.tries > 0 {
			s.Failing++
		}
		i := info(p)
		if pr, ok := it.(Progresser); ok && p.running {
			i.Running, i.Sent = true, pr.Sent()
			s.Sent += i.Sent
		}
		s.Items = append(s.Items, i)
	}
	for it, p := range q.items {
		add(it, p)
	}
	for it, p := range q.inflight {
		if _, queued := q.items[it]; !queued {
			add(it, p)
		}
	}
	for _, p := range q.refused {
		s.Refused = append(s.Refused, info(p))
	}
	sort.Slice(s.Items, func(i, j int) bool { return s.Items[i].Path < s.Items[j].Path })
	sort.Slice(s.Refused, func(i, j int) bool { return s.Refused[i].Path < s.Refused[j].Path })
	return s
}

func info(p *pending) Info {
	return Info{Path: p.path, Size: p.size, Due: p.at, Tries: p.tries, LastError: p.lastErr}
}

// RetryNow makes the uploads waiting out a backoff due now (the
// repository answers again).
func (q *Queue) RetryNow() {
	q.mu.Lock()
	now := q.opts.Now()
	for _, p := range q.items {
		if p.tries > 0 && p.at.After(now) {
			p.at = now
		}
	}
	q.signal()
	q.mu.Unlock()
	q.poke()
}

// Begin tells of an upload made outside the queue (a close that uploads
// itself), so that Status shows it and Drain waits for it; End, when it
// is over.
func (q *Queue) Begin(it Item, path string, size int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.inflight[it] = &pending{path: path, size: size, running: true, at: q.opts.Now()}
	q.signal()
}

// End: the upload Begin told of is over.
func (q *Queue) End(it Item) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.inflight, it)
	q.signal()
}

// ErrRefused is what Drain returns when uploads were refused for good.
var ErrRefused = errors.New("uploads refused by the repository")

// Drain makes everything due now and waits until nothing is left to try:
// the queue is empty but for refused uploads. It returns an error naming
// the refused ones (wrapping ErrRefused), or ctx's when it ends first.
func (q *Queue) Drain(ctx context.Context, progress func(Status)) error {
	q.mu.Lock()
	now := q.opts.Now()
	for _, p := range q.items {
		if p.tries == 0 {
			p.at = now
		}
	}
	q.mu.Unlock()
	q.poke()
	last, lastAt := -1, time.Time{}
	for {
		q.mu.Lock()
		changed, busy := q.changed, q.busy
		q.mu.Unlock()
		s := q.Status()
		// A report when a file is done, and at least every second while
		// bytes go out.
		if progress != nil && (s.Files != last || s.Files > 0 && time.Since(lastAt) >= 900*time.Millisecond) {
			progress(s)
			last, lastAt = s.Files, time.Now()
		}
		if s.Files == 0 && busy == 0 {
			if len(s.Refused) > 0 {
				return RefusedError(s.Refused)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d uploads still pending (kept in the spool): %w", s.Files, ctx.Err())
		case <-changed:
		case <-time.After(time.Second): // a due retry needs the clock, not a change
			q.poke()
		}
	}
}

// RefusedError names refused uploads and their reasons.
func RefusedError(refused []Info) error {
	var b strings.Builder
	for _, r := range refused {
		fmt.Fprintf(&b, "\n  %s: %s", r.Path, r.LastError)
	}
	return fmt.Errorf("%d %w (not retried):%s", len(refused), ErrRefused, b.String())
}

// RefusedItems are the items the repository refused for good.
func (q *Queue) RefusedItems() []Item {
	q.mu.Lock()
	defer q.mu.Unlock()
	items := make([]Item, 0, len(q.refused))
	for it := range q.refused {
		items = append(items, it)
	}
	return items
}
