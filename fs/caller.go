package fs

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/dmsfs/dmsfs/fs/core"
)

// caller tells the core who makes a request (the kernel's uid, gid, pid),
// for the owners of new files and the chmod/chown rules.
func caller(ctx context.Context) context.Context {
	c, ok := fuse.FromContext(ctx)
	if !ok {
		return ctx
	}
	pid := c.Pid
	return core.WithCaller(ctx, core.Caller{UID: c.Uid, GID: c.Gid, Groups: func() []uint32 { return groupsOf(pid) }})
}

// groupsOf reads a process's supplementary groups from /proc.
func groupsOf(pid uint32) []uint32 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil
	}
	for _, line := range strings.Split(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, "Groups:")
		if !ok {
			continue
		}
		var out []uint32
		for _, f := range strings.Fields(rest) {
			if g, err := strconv.ParseUint(f, 10, 32); err == nil {
				out = append(out, uint32(g))
			}
		}
		return out
	}
	return nil
}
