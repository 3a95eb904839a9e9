// Command benchtool prepares what scripts/bench.sh measures: it generates
// the corpus and loads it into an Axelor server through the protocol.
//
//	benchtool gen DIR
//	benchtool load URL USER PASSWORD_FILE DIR    (prints BIGID=<id of big.bin>)
package main

import (
	"context"
	"fmt"
	"math/rand/v2"
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
		return gen(args[1])
	case len(args) == 5 && args[0] == "load":
		return load(args[1], args[2], args[3], args[4])
	}
	return fmt.Errorf("usage: benchtool gen DIR | benchtool load URL USER PASSWORD_FILE DIR")
}

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

// gen makes the corpus: big.bin (1 GiB), small/fNN/ (5,000 files of
// 1–128 KiB in 20 folders), in/ (200 files of 20 KiB), write.bin (256 MiB).
func gen(dir string) error {
	if err := writeRandom(filepath.Join(dir, "big.bin"), 1<<30, 1); err != nil {
		return err
	}
	if err := writeRandom(filepath.Join(dir, "write.bin"), 256<<20, 2); err != nil {
		return err
	}
	for i := range 5000 {
		size := int64(1+(i*7919)%128) << 10
		if err := writeRandom(filepath.Join(dir, "small", fmt.Sprintf("f%02d", i%20), fmt.Sprintf("doc%04d.bin", i)), size, uint64(10+i)); err != nil {
			return err
		}
	}
	for i := range 200 {
		if err := writeRandom(filepath.Join(dir, "in", fmt.Sprintf("new%03d.bin", i)), 20<<10, uint64(100000+i)); err != nil {
			return err
		}
	}
	return nil
}

// load uploads DIR/big.bin and DIR/small/ into the server, 8 at a time.
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
	small, err := c.Mkdir(ctx, root.ID, "small")
	if err != nil {
		return err
	}
	folders, _ := os.ReadDir(filepath.Join(dir, "small"))
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
	for _, fd := range folders {
		sub, err := c.Mkdir(ctx, small.ID, fd.Name())
		if err != nil {
			return err
		}
		files, _ := os.ReadDir(filepath.Join(dir, "small", fd.Name()))
		for _, f := range files {
			jobs <- job{sub.ID, filepath.Join(dir, "small", fd.Name(), f.Name())}
		}
	}
	close(jobs)
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "loaded big.bin and %d small files in %.1fs\n", done.Load(), time.Since(start).Seconds())
	fmt.Printf("BIGID=%s\n", big.ID)
	return nil
}
