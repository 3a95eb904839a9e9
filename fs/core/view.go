package core

import (
	"context"
	"sync"
)

// View is a node of the read-only views beside a directory's entries
// (.versions, .renditions): the adapter shows them all the same way.
type View interface {
	Node
	IsDir() bool
	Lookup(ctx context.Context, name string) (View, error)
	Readdir(ctx context.Context) ([]DirEntry, error)
	// Open opens a file of the view for reading.
	Open(ctx context.Context) (ViewReader, ViewOpen, error)
}

// ViewReader reads an open file of a view.
type ViewReader interface {
	Read(ctx context.Context, dest []byte, off int64) ([]byte, error)
}

// ViewOpen says how the kernel may treat an open file of a view.
type ViewOpen struct {
	// KeepCache: the content never changes (old versions), the kernel
	// may keep its pages across opens.
	KeepCache bool
	// Direct: the size shown is not known to be right (a rendition not
	// fetched yet); the kernel reads through to the end and keeps no
	// pages.
	Direct bool
}

// keepKid is the node kept under name in kids (guarded by mu), made by
// make the first time, so that a name keeps its node (and inode).
func keepKid[T any](mu *sync.Mutex, kids *map[string]*T, name string, make func() *T) *T {
	mu.Lock()
	defer mu.Unlock()
	if *kids == nil {
		*kids = map[string]*T{}
	}
	k := (*kids)[name]
	if k == nil {
		k = make()
		(*kids)[name] = k
	}
	return k
}
