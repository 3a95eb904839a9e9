package cache

import (
	"errors"
	"runtime"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
)

// holdFirst starts an update that runs until release is called, and
// returns once its transaction runs.
func holdFirst(t *testing.T, s *Spool) (release func()) {
	hold, held := make(chan struct{}), make(chan struct{})
	first := make(chan error, 1)
	go func() {
		first <- s.update(func(tx *bolt.Tx) error {
			close(held)
			<-hold
			return tx.Bucket(bucketAttrs).Put([]byte("first"), []byte("{}"))
		})
	}()
	<-held
	return func() {
		close(hold)
		require.NoError(t, <-first)
	}
}

// waitQueued returns once n updates wait for the transaction running.
func waitQueued(s *Spool, n int) {
	for {
		s.gmu.Lock()
		queued := len(s.waiting)
		s.gmu.Unlock()
		if queued == n {
			return
		}
		runtime.Gosched()
	}
}

// Updates that come while a transaction runs share the next one.
func TestUpdatesWhileOneCommitsShareTheNext(t *testing.T) {
	s, err := OpenSpool(t.TempDir())
	require.NoError(t, err)
	defer s.Close()
	release := holdFirst(t, s)

	const n = 8
	var mu sync.Mutex
	txs := map[int]int{} // transaction ID → updates in it
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			require.NoError(t, s.update(func(tx *bolt.Tx) error {
				mu.Lock()
				txs[tx.ID()]++
				mu.Unlock()
				return tx.Bucket(bucketAttrs).Put([]byte{'k', byte('0' + i)}, []byte("{}"))
			}))
		})
	}
	waitQueued(s, n)
	release()
	wg.Wait()
	require.Len(t, txs, 1, "one transaction for all %d: %v", n, txs)
	for i := range n {
		_, ok := s.GetAttr(string([]byte{'k', byte('0' + i)}))
		require.True(t, ok, "update %d was kept", i)
	}
}

// One update's failure in a group fails nobody else.
func TestFailingUpdateFailsOnlyItself(t *testing.T) {
	s, err := OpenSpool(t.TempDir())
	require.NoError(t, err)
	defer s.Close()
	release := holdFirst(t, s)

	const n = 5
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			errs[i] = s.update(func(tx *bolt.Tx) error {
				if i == 2 {
					return errors.New("this one fails")
				}
				return tx.Bucket(bucketAttrs).Put([]byte{'k', byte('0' + i)}, []byte("{}"))
			})
		})
	}
	waitQueued(s, n)
	release()
	wg.Wait()
	for i, err := range errs {
		_, kept := s.GetAttr(string([]byte{'k', byte('0' + i)}))
		if i == 2 {
			require.EqualError(t, err, "this one fails")
			require.False(t, kept)
			continue
		}
		require.NoError(t, err, "update %d", i)
		require.True(t, kept, "update %d was kept", i)
	}
}

// Many concurrent updates all land (none is lost in a handover).
func TestConcurrentUpdatesAllLand(t *testing.T) {
	s, err := OpenSpool(t.TempDir())
	require.NoError(t, err)
	defer s.Close()
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			require.NoError(t, s.SetAttr(string(rune('A'+i%50))+string(rune('a'+i/50)), Attr{Mode: uint32(i)}))
		})
	}
	wg.Wait()
	for i := range 200 {
		a, ok := s.GetAttr(string(rune('A'+i%50)) + string(rune('a'+i/50)))
		require.True(t, ok)
		require.Equal(t, uint32(i), a.Mode)
	}
}
