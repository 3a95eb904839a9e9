package core

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dmsfs/dmsfs/cache"
	"github.com/dmsfs/dmsfs/fs/upload"
)

// replay queues the journal an earlier mount left behind and uploads it
// now; what fails stays queued and is retried in the background, what the
// repository refuses goes to lost+found.
func (f *FS) replay(ctx context.Context) error {
	recs, err := f.spool.Pending()
	if err != nil {
		return err
	}
	if len(recs) == 0 {
		return nil
	}
	var total, done int64
	for _, rec := range recs {
		total += rec.Size
	}
	f.log.Info("uploading files a previous mount left in the spool", "files", len(recs), "bytes", total)
	start := time.Now()
	for i, rec := range recs {
		it := &replayItem{fsys: f, rec: rec}
		stop := it.report(done, total, start)
		err := it.Upload(ctx)
		stop()
		done += rec.Size
		if err == nil {
			f.log.Info("uploaded from the spool", "path", rec.Path, "bytes", rec.Size, "file", i+1, "of", len(recs),
				"progress", replayProgress(done, total, start))
			continue
		}
		f.queue.Failed(it, rec.Path, rec.Size, err)
	}
	return nil
}

// replayProgress is "done of total bytes (p%), rate, time left".
func replayProgress(done, total int64, start time.Time) string {
	s := fmt.Sprintf("%d of %d bytes (%d%%)", done, total, done*100/max(total, 1))
	if el := time.Since(start).Seconds(); el > 0 && done > 0 {
		rate := float64(done) / el
		s += fmt.Sprintf(", %.1f MB/s, about %s left", rate/1e6, time.Duration(float64(total-done)/rate*float64(time.Second)).Round(time.Second))
	}
	return s
}

// report logs the upload's progress every two seconds while it runs (a
// large file's replay holds up the mount); the returned func stops it.
func (it *replayItem) report(done, total int64, start time.Time) (stop func()) {
	quit := make(chan struct{})
	go func() {
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				if m := it.meter.Load(); m != nil {
					it.fsys.log.Info("uploading from the spool", "path", it.rec.Path,
						"progress", replayProgress(done+m.Sent(), total, start))
				}
			}
		}
	}()
	return func() { close(quit) }
}

// replayItem is a journal record of an earlier mount, uploaded by the queue.
type replayItem struct {
	fsys  *FS
	rec   cache.Record
	meter atomic.Pointer[upload.Meter] // the upload under way (Sent)
}

// Sent is how far the upload under way got (upload.Progresser).
func (it *replayItem) Sent() int64 {
	if m := it.meter.Load(); m != nil {
		return m.Sent()
	}
	return 0
}

// data is the content the record promised: the bytes a small file's
// record holds, else its data file (fsync'd before the record was made).
func (it *replayItem) data() (io.ReaderAt, int64, func(), error) {
	f, rec := it.fsys, it.rec
	if b, ok := f.spool.Inline(rec.Key); ok {
		return bytes.NewReader(b), int64(len(b)), func() {}, nil
	}
	fh, err := os.Open(f.spool.Path(rec.Key))
	if err != nil {
		return nil, 0, nil, fmt.Errorf("spool data of %s: %w", rec.Path, err)
	}
	size := rec.Size
	if st, err := fh.Stat(); err == nil && st.Size() != rec.Size {
		// Written again after the record (not fsync'd, so not promised):
		// what is on disk is the newest content.
		f.log.Debug("spool data grew after its journal record", "path", rec.Path, "bytes", st.Size(), "journal", rec.Size)
		size = st.Size()
	}
	return fh, size, func() { fh.Close() }, nil
}

func (it *replayItem) Upload(ctx context.Context) error {
	f, rec := it.fsys, it.rec
	data, size, done, err := it.data()
	if err != nil {
		return err
	}
	defer done()
	rec.Size = size
	m := upload.NewMeter(data, rec.Size)
	it.meter.Store(m)
	defer it.meter.Store(nil)
	res, err := f.sender.Send(ctx, upload.Request{Rec: rec, Data: m, Replay: true})
	if err != nil {
		return err
	}
	if rf, ok := fileOf(res.Node, res.File); ok && res.Conflict == "" && (rec.Mode != 0 || !rec.Mtime.IsZero()) {
		_ = f.spool.SetAttr(f.attrKey(res.Node.ID, rf.Name), cache.Attr{ContentID: rf.ContentID, Mode: rec.Mode, Mtime: rec.Mtime})
	}
	f.spool.Remove(rec.Key, false, true)
	return nil
}

// lostFound moves the bytes of an upload the repository refused for good
// out of the spool, to <cache-dir>/lost+found/<path> (davfs2's rule:
// never dropped), and returns where.
func (f *FS) lostFound(src io.ReaderAt, size int64, mountPath string) (string, error) {
	rel := filepath.Clean("/" + mountPath)[1:]
	dst := filepath.Join(f.spool.Dir(), "lost+found", rel)
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return "", err
	}
	for i := 1; ; i++ {
		if _, err := os.Lstat(dst); errors.Is(err, os.ErrNotExist) {
			break
		}
		ext := filepath.Ext(rel)
		dst = filepath.Join(f.spool.Dir(), "lost+found", fmt.Sprintf("%s.%d%s", strings.TrimSuffix(rel, ext), i, ext))
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(out, io.NewSectionReader(src, 0, size)); err != nil {
		out.Close()
		return "", err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return "", err
	}
	return dst, out.Close()
}

// LostFound is where refused uploads go: <cache-dir>/lost+found.
func (f *FS) LostFound() string { return filepath.Join(f.spool.Dir(), "lost+found") }

// Lost is an upload the repository refused for good, and where its bytes
// were kept.
type Lost struct {
	Path   string // in the mount
	Reason string
	Saved  string // in lost+found; "" if they could not be moved (then still in the spool)
}

// SaveRefused moves the bytes of what the repository refused for good to
// lost+found and says where; unmount calls it (Close too, for the rest).
// Until then the bytes stay in the mount.
func (f *FS) SaveRefused() []Lost {
	reasons := map[string]string{}
	for _, r := range f.queue.Status().Refused {
		reasons[r.Path] = r.LastError
	}
	var lost []Lost
	for _, it := range f.queue.RefusedItems() {
		var l Lost
		switch x := it.(type) {
		case *File:
			x.mu.Lock()
			l.Path = x.path()
			if x.local != nil && x.dirty && !x.gone {
				dst, err := f.lostFound(x.local, x.size, l.Path)
				if err != nil {
					f.log.Error("could not keep a refused upload in lost+found; it stays in the spool", "path", l.Path, "err", err)
				} else {
					l.Saved = dst
					x.dirty = false
					x.closeLocal() // its spool copy and journal record
					x.size = x.rf.Size
				}
			}
			x.mu.Unlock()
		case *replayItem:
			l.Path = x.rec.Path
			data, size, done, err := x.data()
			if err != nil {
				continue
			}
			dst, err := f.lostFound(data, size, x.rec.Path)
			done()
			if err != nil {
				f.log.Error("could not keep a refused upload in lost+found; it stays in the spool", "path", x.rec.Path, "err", err)
			} else {
				l.Saved = dst
				f.spool.Remove(x.rec.Key, false, true)
			}
		default:
			continue
		}
		f.queue.Cancel(it)
		l.Reason = reasons[l.Path]
		if l.Saved != "" {
			f.log.Warn("the repository refused this file for good; its bytes are in lost+found", "path", l.Path, "reason", l.Reason, "saved", l.Saved)
		}
		lost = append(lost, l)
	}
	return lost
}
