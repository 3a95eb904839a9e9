package core

import (
	"context"
	"slices"
	"syscall"
)

// Who owns what, with several users (allow_other): a new file or
// directory belongs to the user that made it, kept locally like the mode
// (repositories keep no owners); chmod and chown follow POSIX: the owner
// may chmod and give the file a group of theirs, root may do anything,
// others get EPERM. The kernel's default_permissions checks the rest
// against the modes and owners shown.

// Refuse answers an operation no repository can keep (hard and symbolic
// links; pipes, sockets and devices are refused by Mknod) with EPERM and
// a log line, the same way each time.
func (d *Dir) Refuse(op, name, what string) error {
	d.fsys.log.Info("refused: a repository keeps documents and folders, not "+what, "op", op, "path", join(d.Path(), name))
	return syscall.EPERM
}

// Caller is who makes a request, as the kernel tells it.
type Caller struct {
	UID, GID uint32
	// Groups returns the caller's supplementary groups (read only for a
	// chgrp).
	Groups func() []uint32
}

type callerKey struct{}

// WithCaller says who makes the requests made with ctx.
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

func callerOf(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}

// ownNew makes the caller the owner of a new file or directory, where
// they are not who the mount shows as owner anyway.
func (fsys *FS) ownNew(ctx context.Context, a *localAttr) {
	c, ok := callerOf(ctx)
	if !ok || (c.UID == fsys.opts.UID && c.GID == fsys.opts.GID) {
		return
	}
	a.uid, a.gid, a.owner = c.UID, c.GID, true
}

// mayChown checks the mode and owner parts of a setattr against the
// current owner (POSIX chmod(2), chown(2)).
func mayChown(ctx context.Context, in SetAttr, uid, gid uint32) error {
	c, ok := callerOf(ctx)
	if !ok || c.UID == 0 {
		return nil
	}
	if in.Mode != nil && c.UID != uid {
		return syscall.EPERM
	}
	if in.UID != nil && *in.UID != uid {
		return syscall.EPERM // only root gives files away
	}
	if in.GID != nil && *in.GID != gid {
		if c.UID != uid {
			return syscall.EPERM
		}
		if *in.GID != c.GID && (c.Groups == nil || !slices.Contains(c.Groups(), *in.GID)) {
			return syscall.EPERM // a group the owner is not in
		}
	}
	return nil
}
