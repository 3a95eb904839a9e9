package main

import (
	"fmt"
	"io"
	"os"
	"path"
	"time"

	"golang.org/x/sys/unix"

	dfs "github.com/dmsfs/dmsfs/fs"
)

// progress renders queue states one after another as lines: files and
// bytes pending, how much the uploads under way sent, the rate and the
// time left, and each large file's share.
type progress struct {
	at   time.Time
	sent map[string]int64 // per path, as last seen
	size map[string]int64
	rate float64 // bytes per second, smoothed
}

// largeFile is the size from which a file's own progress is shown.
const largeFile = 64 << 20

func (p *progress) line(q dfs.Queue) string {
	if q.Files == 0 {
		return "all uploads done"
	}
	now := time.Now()
	var moved int64
	sent := map[string]int64{}
	for _, it := range q.Items {
		sent[it.Path] = it.Sent
		if prev, ok := p.sent[it.Path]; ok && it.Sent >= prev {
			moved += it.Sent - prev
		} else if !ok {
			moved += it.Sent
		}
	}
	for name, prev := range p.sent {
		if _, still := sent[name]; !still {
			moved += max(p.size[name]-prev, 0) // done since
		}
	}
	if !p.at.IsZero() {
		if dt := now.Sub(p.at).Seconds(); dt > 0.05 {
			r := float64(moved) / dt
			if p.rate == 0 {
				p.rate = r
			} else {
				p.rate = 0.5*p.rate + 0.5*r
			}
		}
	}
	p.at, p.sent, p.size = now, sent, map[string]int64{}
	for _, it := range q.Items {
		p.size[it.Path] = it.Size
	}

	running := false
	for _, it := range q.Items {
		running = running || it.Running
	}
	if !running {
		p.rate = 0 // waiting (write-back delay, a retry's backoff): no rate to speak of
	}
	line := fmt.Sprintf("%d upload(s) pending, %s", q.Files, humanBytes(q.Bytes))
	if running {
		line = fmt.Sprintf("%d upload(s) pending: %s of %s sent (%d%%)", q.Files, humanBytes(q.Sent), humanBytes(q.Bytes), percent(q.Sent, q.Bytes))
		if p.rate >= 1 {
			line += fmt.Sprintf(", %s/s", humanBytes(int64(p.rate)))
			left := time.Duration(float64(q.Bytes-q.Sent) / p.rate * float64(time.Second))
			line += ", about " + left.Round(time.Second).String() + " left"
		}
	}
	for _, it := range q.Items {
		if it.Running && it.Size >= largeFile {
			line += fmt.Sprintf("; %s %d%% of %s", path.Base(it.Path), percent(it.Sent, it.Size), humanBytes(it.Size))
		}
	}
	if q.Failing > 0 {
		line += fmt.Sprintf(", %d failing (retrying)", q.Failing)
	}
	return line
}

func percent(n, of int64) int64 {
	if of <= 0 {
		return 100
	}
	return n * 100 / of
}

// progressLine is one state on its own (dmsfs status).
func progressLine(q dfs.Queue) string { return (&progress{}).line(q) }

// isTerminal tells whether w is a terminal, where progress redraws one
// line instead of printing one per report.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
