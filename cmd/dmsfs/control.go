package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	dfs "github.com/dmsfs/dmsfs/fs"
)

// A running mount answers on a unix socket named after its mount point:
// GET /status returns fs.Status as JSON; POST /unmount uploads what is
// pending, streaming one progress line per change, and then unmounts;
// POST /publish?path=REL[&dry=1] publishes (or describes) a draft.

func runtimeDir() string {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "dmsfs")
	}
	return filepath.Join(os.TempDir(), "dmsfs-"+strconv.Itoa(os.Getuid()))
}

func socketPath(mountpoint string) string {
	sum := sha256.Sum256([]byte(mountpoint))
	return filepath.Join(runtimeDir(), hex.EncodeToString(sum[:8])+".sock")
}

// controlServer serves the socket of one mount.
type controlServer struct {
	fsys    *dfs.FS
	unmount func(ctx context.Context, progress func(dfs.Queue)) error
	ln      net.Listener
	srv     *http.Server
	// released is closed once the unmounted process let go of the cache
	// directory and the repository (Release).
	released chan struct{}
}

// Release tells a waiting unmount request that the cache directory and
// the repository are free: its answer ends then, so that a mount with
// the same directory right after `dmsfs unmount` finds it unlocked (and
// the embedded repository too). Call it once.
func (c *controlServer) Release() { close(c.released) }

func startControl(mountpoint string, fsys *dfs.FS, unmount func(context.Context, func(dfs.Queue)) error) (*controlServer, error) {
	path := socketPath(mountpoint)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	os.Remove(path) // left by a killed mount
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	c := &controlServer{fsys: fsys, unmount: unmount, ln: ln, released: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(fsys.Status())
	})
	mux.HandleFunc("POST /unmount", c.handleUnmount)
	mux.HandleFunc("POST /sync", func(w http.ResponseWriter, r *http.Request) {
		if err := streamProgress(w, func(progress func(dfs.Queue)) error { return fsys.Sync(r.Context(), progress) }); err != nil {
			writeError(w, err)
		}
	})
	for _, what := range []string{"pin", "unpin"} {
		mux.HandleFunc("POST /"+what, func(w http.ResponseWriter, r *http.Request) {
			do := fsys.Pin
			if what == "unpin" {
				do = fsys.Unpin
			}
			rep, err := do(r.Context(), r.URL.Query().Get("path"))
			w.Header().Set("Content-Type", "application/json")
			if err != nil {
				w.WriteHeader(http.StatusConflict)
				json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
				return
			}
			json.NewEncoder(w).Encode(rep)
		})
	}
	mux.HandleFunc("POST /publish", func(w http.ResponseWriter, r *http.Request) {
		plan, err := fsys.Publish(r.Context(), r.URL.Query().Get("path"), r.URL.Query().Get("dry") == "1")
		w.Header().Set("Content-Type", "application/json")
		if err != nil {
			w.WriteHeader(http.StatusConflict)
			json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
			return
		}
		json.NewEncoder(w).Encode(plan)
	})
	c.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = c.srv.Serve(ln) }()
	return c, nil
}

// streamProgress runs op, writing each progress report as a line as it
// comes.
func streamProgress(w http.ResponseWriter, op func(progress func(dfs.Queue)) error) error {
	w.Header().Set("Content-Type", "text/plain")
	flusher, _ := w.(http.Flusher)
	var p progress
	return op(func(q dfs.Queue) {
		fmt.Fprintln(w, p.line(q))
		if flusher != nil {
			flusher.Flush()
		}
	})
}

func (c *controlServer) handleUnmount(w http.ResponseWriter, r *http.Request) {
	err := streamProgress(w, func(progress func(dfs.Queue)) error { return c.unmount(r.Context(), progress) })
	if err != nil {
		writeError(w, err)
		return
	}
	select {
	case <-c.released:
	case <-r.Context().Done():
	}
	fmt.Fprintln(w, "unmounted")
}

func (c *controlServer) close() {
	_ = c.srv.Close()
	os.Remove(c.ln.Addr().String())
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// controlClient talks to the socket of the mount at mountpoint.
func controlClient(mountpoint string) *http.Client {
	path := socketPath(mountpoint)
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}}
}

// writeError ends a streamed answer with err, each of its lines marked.
func writeError(w io.Writer, err error) {
	for _, line := range strings.Split(err.Error(), "\n") {
		fmt.Fprintln(w, "error:", line)
	}
}

// streamLines copies a streamed answer line by line, and returns the
// error its last lines carry (see writeError). On a terminal each line
// replaces the one before. Elsewhere (a log, a pipe) a report of the
// queue's state is printed when quiet has passed since the last one
// printed, and the last always; other lines at once: a sync of 200
// small files wrote 400 lines.
func streamLines(r io.Reader, w io.Writer, now func() time.Time, quiet time.Duration) (failure []string, err error) {
	redraw := isTerminal(w)
	sc := bufio.NewScanner(r)
	drawn := false
	var printed time.Time
	held := "" // the latest line not printed
	for sc.Scan() {
		line := sc.Text()
		if msg, ok := strings.CutPrefix(line, "error: "); ok {
			failure = append(failure, msg)
			continue
		}
		if redraw {
			fmt.Fprint(w, "\r\x1b[K"+line)
			drawn = true
			continue
		}
		if !strings.Contains(line, " upload(s) pending") {
			// Not a report of the queue's state ("all uploads done",
			// "unmounted"): said at once, after the reports it ends.
			fmt.Fprintln(w, line)
			held = ""
			continue
		}
		if t := now(); printed.IsZero() || t.Sub(printed) >= quiet {
			fmt.Fprintln(w, line)
			printed, held = t, ""
			continue
		}
		held = line
	}
	if held != "" {
		fmt.Fprintln(w, held)
	}
	if drawn {
		fmt.Fprintln(w)
	}
	return failure, sc.Err()
}

// quietLines is how often progress goes to a log or a pipe at most.
const quietLines = time.Second
