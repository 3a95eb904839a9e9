package upload

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dmsfs/dmsfs/internal/backoff"
	"github.com/dmsfs/dmsfs/remote"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// item fails with the errors in fails, one per try, then succeeds.
type item struct {
	mu    sync.Mutex
	fails []error
	tries int
}

func (it *item) Upload(context.Context) error {
	it.mu.Lock()
	defer it.mu.Unlock()
	it.tries++
	if len(it.fails) == 0 {
		return nil
	}
	err := it.fails[0]
	it.fails = it.fails[1:]
	return err
}

func newQueue(clk *fakeClock) *Queue {
	return New(Options{Now: clk.Now, Tick: time.Hour, Retry: backoff.Policy{Base: time.Second, Max: time.Minute}})
}

// A transient failure is retried after the backoff by the injected clock,
// not before.
func TestQueueRetriesByTheClock(t *testing.T) {
	clk := &fakeClock{t: time.Unix(0, 0)}
	q := newQueue(clk)
	defer q.Stop()
	it := &item{fails: []error{fmt.Errorf("put: %w", remote.ErrUnavailable)}}
	q.Schedule(it, "/a", 1, 0)
	q.Poll()
	require.Equal(t, 1, it.tries)
	s := q.Status()
	require.Equal(t, 1, s.Files)
	require.Equal(t, 1, s.Failing)
	require.Contains(t, s.Items[0].LastError, "unavailable")

	q.Poll() // not due yet
	require.Equal(t, 1, it.tries)
	clk.Advance(time.Second)
	q.Poll()
	require.Equal(t, 2, it.tries)
	require.Zero(t, q.Status().Files)
}

// A permanent refusal leaves the queue at once: Drain names it and does
// not wait; the other uploads complete.
func TestQueueRefusalStopsNothing(t *testing.T) {
	clk := &fakeClock{t: time.Unix(0, 0)}
	q := newQueue(clk)
	defer q.Stop()
	bad := &item{fails: []error{fmt.Errorf("upload: File name is not allowed: %w", remote.ErrInvalidName)}}
	good := &item{}
	q.Schedule(bad, "/tool.exe", 8, time.Hour)
	q.Schedule(good, "/notes.txt", 5, time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := q.Drain(ctx, nil)
	require.ErrorIs(t, err, ErrRefused)
	require.Contains(t, err.Error(), "/tool.exe: upload: File name is not allowed")
	require.Equal(t, 1, good.tries)
	require.Equal(t, 1, bad.tries, "a refusal is not retried")
	s := q.Status()
	require.Zero(t, s.Files)
	require.Len(t, s.Refused, 1)
	require.Equal(t, []Item{bad}, q.RefusedItems())
	require.True(t, q.Held(bad), "a release must not send a refused upload again")
	require.False(t, q.Held(good))

	// Saving it again tries again.
	q.Schedule(bad, "/tool.exe", 8, 0)
	q.Poll()
	require.Equal(t, 2, bad.tries)
	require.Empty(t, q.Status().Refused)
	require.NoError(t, q.Drain(ctx, nil))
}

// Drain ends with its context and says what is left.
func TestQueueDrainEndsWithContext(t *testing.T) {
	clk := &fakeClock{t: time.Unix(0, 0)}
	q := newQueue(clk)
	defer q.Stop()
	fails := make([]error, 100)
	for i := range fails {
		fails[i] = remote.ErrUnavailable
	}
	q.Schedule(&item{fails: fails}, "/a", 1, 0)
	ctx, cancel := context.WithCancel(context.Background())
	var seen []int
	err := q.Drain(ctx, func(s Status) {
		seen = append(seen, s.Files)
		cancel()
	})
	require.True(t, errors.Is(err, context.Canceled), "%v", err)
	require.Contains(t, err.Error(), "1 uploads still pending")
	require.Equal(t, []int{1}, seen)
}

// gated blocks its upload until released, telling when it started.
type gated struct {
	started chan<- *gated
	release chan struct{}
	big     bool
	bigs    *atomic.Int64 // big uploads running, and the most at once
	most    *atomic.Int64
}

func (g *gated) Upload(context.Context) error {
	if g.big && g.bigs != nil {
		n := g.bigs.Add(1)
		defer g.bigs.Add(-1)
		for m := g.most.Load(); n > m && !g.most.CompareAndSwap(m, n); m = g.most.Load() {
		}
	}
	g.started <- g
	<-g.release
	return nil
}

// Small files' uploads run up to SmallFactor times Workers at once, big
// ones Workers at most, oldest first across both.
func TestQueueRunsMoreSmallUploadsAtOnce(t *testing.T) {
	q := New(Options{Workers: 2, Tick: time.Hour})
	defer q.Stop()
	started := make(chan *gated, 4*SmallFactor)
	var bigs, most atomic.Int64
	schedule := func(i int, size int64) {
		g := &gated{started: started, release: make(chan struct{}), big: size > SmallFile, bigs: &bigs, most: &most}
		q.Schedule(g, fmt.Sprintf("/f%d", i), size, 0)
	}
	wait := func() *gated {
		select {
		case g := <-started:
			return g
		case <-time.After(time.Minute):
			t.Fatal("no upload started")
			return nil
		}
	}
	nsmall := 2*SmallFactor + 2 // two more than may run
	for i := range nsmall {
		schedule(i, 20<<10)
	}
	var running []*gated
	for range 2 * SmallFactor {
		running = append(running, wait())
	}
	for i := range 3 {
		schedule(nsmall+i, SmallFile+1)
	}
	select {
	case g := <-started:
		t.Fatalf("one more upload started with %d running: %+v", 2*SmallFactor, g)
	default:
	}
	for _, g := range running[:3] {
		close(g.release)
	}
	var next []*gated
	for range 3 {
		next = append(next, wait())
	}
	nbig := 0
	for _, g := range next {
		if g.big {
			nbig++
		}
	}
	require.Equal(t, 1, nbig, "the two older small ones, then the oldest big one")
	for _, g := range append(running[3:], next...) {
		close(g.release)
	}
	for range 2 { // the other two big ones
		close(wait().release)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, q.Drain(ctx, nil))
	require.LessOrEqual(t, most.Load(), int64(2), "never more big uploads than Workers")
}

// The workers are refilled as uploads end, not in rounds: while three
// slow uploads still run, the next queued one starts as soon as a fourth
// ends; never more than Workers big ones run at once.
func TestQueueRefillsWorkersAsUploadsEnd(t *testing.T) {
	q := New(Options{Workers: 4, Tick: time.Hour})
	defer q.Stop()
	started := make(chan *gated, 10)
	schedule := func(i int) {
		g := &gated{started: started, release: make(chan struct{})}
		q.Schedule(g, fmt.Sprintf("/f%d", i), SmallFile+1, 0) // big: Workers at once
	}
	for i := range 4 {
		schedule(i)
	}
	var running []*gated
	for range 4 {
		running = append(running, <-started)
	}
	// Saved while those run (cp goes on writing): they start as workers
	// free up.
	schedule(4)
	schedule(5)
	select {
	case g := <-started:
		t.Fatalf("a fifth upload started with four running: %p", g)
	default:
	}
	close(running[0].release)
	var fifth *gated
	select {
	case fifth = <-started: // the others still block
	case <-time.After(time.Minute):
		t.Fatal("no upload started when a worker was free")
	}
	require.NotContains(t, running, fifth)
	for _, g := range append(running[1:], fifth) {
		close(g.release)
	}
	last := <-started
	close(last.release)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, q.Drain(ctx, nil))
}
