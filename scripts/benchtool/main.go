// Command benchtool prepares what scripts/bench.sh measures: it generates
// the corpus and loads it into an Axelor server through the protocol.
//
//	benchtool gen DIR [BIG_MIB SMALL FOLDERS MAX_KIB IN]
//	benchtool load URL USER PASSWORD_FILE DIR    (prints BIGID=<id of big.bin>)
//	benchtool proxy ADDR TARGET DELAY             (prints PROXY=<url>; GET /__count tells the requests)
package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dmsfs/dmsfs/remote"
	"github.com/dmsfs/dmsfs/remote/axelor"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "benchtool:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	switch {
	case len(args) == 2 && args[0] == "gen":
		return gen(args[1], corpus{bigMiB: 1024, small: 5000, folders: 20, maxKiB: 128, in: 200})
	case (len(args) == 7 || len(args) == 8) && args[0] == "gen":
		var c corpus
		for i, p := range []*int{&c.bigMiB, &c.small, &c.folders, &c.maxKiB, &c.in, &c.tree}[:len(args)-2] {
			if _, err := fmt.Sscan(args[2+i], p); err != nil {
				return fmt.Errorf("gen: %q is no number", args[2+i])
			}
		}
		return gen(args[1], c)
	case len(args) == 5 && args[0] == "load":
		return load(args[1], args[2], args[3], args[4])
	case len(args) == 4 && args[0] == "proxy":
		d, err := time.ParseDuration(args[3])
		if err != nil {
			return err
		}
		return proxy(args[1], args[2], d)
	}
	return fmt.Errorf("usage: benchtool gen DIR [BIG_MIB SMALL FOLDERS MAX_KIB IN [TREE]] | benchtool load URL USER PASSWORD_FILE DIR | benchtool proxy ADDR TARGET DELAY")
}

// proxy forwards to target, each request delay late (a network's round
// trip), and counts them; GET /__count answers the count.
func proxy(addr, target string, delay time.Duration) error {
	u, err := url.Parse(target)
	if err != nil {
		return err
	}
	var n atomic.Int64
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = &http.Transport{MaxIdleConnsPerHost: 64}
	rp.FlushInterval = -1
	// Big copy buffers: a real network's latency costs this machine no
	// CPU, and the proxy shares the 2 cores with the mounts it measures
	// (32 KiB, the default, cost it a third of them on a cold read).
	rp.BufferPool = &bufferPool{sync.Pool{New: func() any { return make([]byte, 1<<20) }}}
	rp.ModifyResponse = func(resp *http.Response) error {
		resp.Body = &gulpBody{resp.Body}
		return nil
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/__count" {
			fmt.Fprintln(w, n.Load())
			return
		}
		n.Add(1)
		time.Sleep(delay)
		rp.ServeHTTP(w, r)
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Printf("PROXY=http://%s\n", ln.Addr())
	return http.Serve(ln, h)
}

// gulpBody reads a response body in large pieces. A proxy that reads each
// few kilobytes as they arrive spends a read and a write on each, and
// that cost varies: one cold read of 512 MiB took the proxy 300 ms of CPU
// in one run and 1,530 ms in another, and the mount it measured ran at
// 757 and 309 MB/s, on the 2 cores it shares with them. A real network
// costs the client nothing of the sort (its interface coalesces what
// arrives). After a short read it waits a moment for more to arrive.
type gulpBody struct{ io.ReadCloser }

func (g *gulpBody) Read(p []byte) (int, error) {
	n, err := g.ReadCloser.Read(p)
	if err == nil && n < len(p)/4 {
		time.Sleep(gulpWait)
	}
	return n, err
}

// gulpWait is how long a short read waits: at 1 GB/s, 200 KB arrive.
const gulpWait = 200 * time.Microsecond

type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte  { return b.p.Get().([]byte) }
func (b *bufferPool) Put(x []byte) { b.p.Put(x) } //nolint:staticcheck // SA6002: few buffers, each 1 MiB

// writeRandom writes size pseudo-random bytes to path.
func writeRandom(path string, size int64, seed uint64) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r := rand.New(rand.NewPCG(seed, seed*7+1))
	buf := make([]byte, 1<<20)
	for left := size; left > 0; {
		for i := 0; i+8 <= len(buf); i += 8 {
			v := r.Uint64()
			for j := range 8 {
				buf[i+j] = byte(v >> (8 * j))
			}
		}
		n := min(left, int64(len(buf)))
		if _, err := f.Write(buf[:n]); err != nil {
			return err
		}
		left -= n
	}
	return nil
}

// corpus sizes the generated files.
type corpus struct{ bigMiB, small, folders, maxKiB, in, tree int }

// gen makes the corpus: big.bin (1 GiB by default), small/fNN/ (5,000
// files of 1–128 KiB in 20 folders), in/ (200 files of 20 KiB),
// write.bin (256 MiB), and with tree > 0 tree/aN/bN/ (that many files of
// 1 KiB in 10 folders of 10 subfolders each).
func gen(dir string, c corpus) error {
	if err := writeRandom(filepath.Join(dir, "big.bin"), int64(c.bigMiB)<<20, 1); err != nil {
		return err
	}
	if err := writeRandom(filepath.Join(dir, "write.bin"), 256<<20, 2); err != nil {
		return err
	}
	for i := range c.small {
		size := int64(1+(i*7919)%c.maxKiB) << 10
		if err := writeRandom(filepath.Join(dir, "small", fmt.Sprintf("f%02d", i%c.folders), fmt.Sprintf("doc%04d.bin", i)), size, uint64(10+i)); err != nil {
			return err
		}
	}
	for i := range c.in {
		if err := writeRandom(filepath.Join(dir, "in", fmt.Sprintf("new%03d.bin", i)), 20<<10, uint64(100000+i)); err != nil {
			return err
		}
	}
	for i := range c.tree {
		p := filepath.Join(dir, "tree", fmt.Sprintf("a%d", i%10), fmt.Sprintf("b%d", i/10%10), fmt.Sprintf("t%05d.txt", i))
		if err := writeRandom(p, 1<<10, uint64(200000+i)); err != nil {
			return err
		}
	}
	return nil
}

// load uploads DIR/big.bin, DIR/small/ and DIR/tree/ (if there) into the
// server, 8 files at a time.
func load(url, user, passwordFile, dir string) error {
	pw, err := os.ReadFile(passwordFile)
	if err != nil {
		return err
	}
	ctx := context.Background()
	c, err := axelor.New(ctx, axelor.Config{BaseURL: strings.TrimPrefix(url, "axelor+"), User: user, Password: strings.TrimSpace(string(pw))})
	if err != nil {
		return err
	}
	root, _ := c.Root(ctx)
	upload := func(parent remote.ID, path string) (remote.Node, error) {
		f, err := os.Open(path)
		if err != nil {
			return remote.Node{}, err
		}
		defer f.Close()
		st, _ := f.Stat()
		return c.Insert(ctx, parent, filepath.Base(path), remote.Content{ReaderAt: f, Size: st.Size()})
	}
	start := time.Now()
	big, err := upload(root.ID, filepath.Join(dir, "big.bin"))
	if err != nil {
		return err
	}
	type job struct {
		parent remote.ID
		path   string
	}
	jobs := make(chan job)
	var wg sync.WaitGroup
	var failed atomic.Value
	var done atomic.Int64
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				if _, err := upload(j.parent, j.path); err != nil {
					failed.Store(err)
				}
				done.Add(1)
			}
		}()
	}
	// walk makes the folders of local directory path under parent and
	// hands its files to the uploaders.
	var walk func(parent remote.ID, path string) error
	walk = func(parent remote.ID, path string) error {
		folder, err := c.Mkdir(ctx, parent, filepath.Base(path))
		if err != nil {
			return err
		}
		entries, err := os.ReadDir(path)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if e.IsDir() {
				if err := walk(folder.ID, filepath.Join(path, e.Name())); err != nil {
					return err
				}
				continue
			}
			jobs <- job{folder.ID, filepath.Join(path, e.Name())}
		}
		return nil
	}
	var werr error
	for _, top := range []string{"small", "tree"} {
		if _, err := os.Stat(filepath.Join(dir, top)); err == nil && werr == nil {
			werr = walk(root.ID, filepath.Join(dir, top))
		}
	}
	close(jobs)
	wg.Wait()
	if werr != nil {
		return werr
	}
	if err, _ := failed.Load().(error); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "loaded big.bin and %d other files in %.1fs\n", done.Load(), time.Since(start).Seconds())
	fmt.Printf("BIGID=%s\n", big.ID)
	return nil
}
