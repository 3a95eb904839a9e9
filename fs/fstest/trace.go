package fstest

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"golang.org/x/sys/unix"
)

// Requests counts the requests the kernel sends to one FUSE mount, by
// the kernel's own tracepoint (fuse:fuse_request_send, Linux 6.12 and
// later), in a trace instance of the test's own so that it neither
// sees nor disturbs other tracing.
type Requests struct {
	t   testing.TB
	dir string // the trace instance
}

const tracefs = "/sys/kernel/tracing"

// TraceRequests starts counting the requests sent to the mount at mnt.
// Without the tracepoint it skips the test, or fails it when CI=true.
func TraceRequests(t testing.TB, mnt string) *Requests {
	t.Helper()
	if _, err := os.Stat(filepath.Join(tracefs, "events")); err != nil {
		_ = unix.Mount("nodev", tracefs, "tracefs", 0, "")
	}
	if _, err := os.Stat(filepath.Join(tracefs, "events/fuse/fuse_request_send")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the tracepoint fuse:fuse_request_send is needed on CI: %v", err)
		}
		t.Skipf("no tracepoint fuse:fuse_request_send: %v", err)
	}
	var st unix.Stat_t
	if err := unix.Stat(mnt, &st); err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp(filepath.Join(tracefs, "instances"), "dmsfs-test-")
	if err != nil {
		t.Fatalf("a trace instance: %v", err)
	}
	t.Cleanup(func() { _ = os.Remove(dir) })
	ev := filepath.Join(dir, "events/fuse/fuse_request_send")
	// The event holds the connection's dev_t in the kernel's encoding.
	conn := unix.Major(st.Dev)<<20 | unix.Minor(st.Dev)
	r := &Requests{t: t, dir: dir}
	r.write(filepath.Join(ev, "filter"), fmt.Sprintf("connection == %d", conn))
	r.write(filepath.Join(ev, "enable"), "1")
	t.Cleanup(func() { _ = os.WriteFile(filepath.Join(ev, "enable"), []byte("0"), 0) })
	return r
}

func (r *Requests) write(path, s string) {
	r.t.Helper()
	if err := os.WriteFile(path, []byte(s), 0); err != nil {
		r.t.Fatalf("tracing: %v", err)
	}
}

var opcode = regexp.MustCompile(`opcode \d+ \((\w+)\)`)

// Counts returns how many requests of each opcode (FUSE_FLUSH, …) the
// kernel sent since the start or the last Reset.
func (r *Requests) Counts() map[string]int {
	r.t.Helper()
	b, err := os.ReadFile(filepath.Join(r.dir, "trace"))
	if err != nil {
		r.t.Fatal(err)
	}
	out := map[string]int{}
	for _, m := range opcode.FindAllSubmatch(b, -1) {
		out[string(m[1])]++
	}
	return out
}

// Reset forgets the requests counted so far.
func (r *Requests) Reset() {
	r.t.Helper()
	r.write(filepath.Join(r.dir, "trace"), "")
}
