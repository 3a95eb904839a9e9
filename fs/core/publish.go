package core

import (
	"context"
	"fmt"

	"github.com/dmsfs/dmsfs/remote"
)

// NodeAt returns the repository node ID of what the mount shows at rel, a
// path relative to the mount point ("" is the root).
func (f *FS) NodeAt(ctx context.Context, rel string) (remote.ID, error) {
	n, _, err := f.nodeAt(ctx, rel)
	if err != nil {
		return "", err
	}
	switch op := n.(type) {
	case *Dir:
		return op.id, nil
	case *File:
		op.mu.Lock()
		defer op.mu.Unlock()
		if op.temp || op.doc == nil {
			return "", fmt.Errorf("%s is not in the repository (a local temporary file, or not uploaded yet): %w", rel, remote.ErrNotFound)
		}
		return op.doc.id, nil
	}
	return "", fmt.Errorf("%s: %w", rel, remote.ErrNotFound)
}

// Publish publishes the draft holding what the mount shows at rel, after
// uploading everything pending; with dryRun it only says what would be
// published. Repositories without drafts refuse.
func (f *FS) Publish(ctx context.Context, rel string, dryRun bool) (remote.PublishPlan, error) {
	pub, ok := remote.As[remote.Publisher](f.repo)
	if !ok {
		return remote.PublishPlan{}, fmt.Errorf("this repository has no drafts; changes are live once uploaded: %w", remote.ErrUnsupported)
	}
	id, err := f.NodeAt(ctx, rel)
	if err != nil {
		return remote.PublishPlan{}, err
	}
	if err := f.Sync(ctx, nil); err != nil {
		return remote.PublishPlan{}, fmt.Errorf("upload pending changes first: %w", err)
	}
	if dryRun {
		return pub.PublishPlan(ctx, id)
	}
	plan, err := pub.Publish(ctx, id)
	f.changes.Add(1) // the history has a new version
	return plan, err
}
