package core

import (
	"io/fs"
	"path/filepath"
	"sync"
	"syscall"
)

// spoolMeter bounds the disk the spool uses (Options.SpoolLimit). It counts
// growth as writes happen and measures the spool directory again only when
// the count reaches the limit, since uploads and evictions free space
// without telling it.
type spoolMeter struct {
	dir   string
	limit int64

	mu   sync.Mutex // guards used
	used int64      // bytes in the spool as of the last measurement, plus growth since
}

// reserve accounts for grow more bytes, or returns ENOSPC.
func (m *spoolMeter) reserve(grow int64) error {
	if m == nil || m.limit <= 0 || grow <= 0 {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.used+grow > m.limit {
		m.used = diskUse(m.dir)
		if m.used+grow > m.limit {
			return syscall.ENOSPC
		}
	}
	m.used += grow
	return nil
}

// diskUse is the space the files below dir take on disk (sparse parts free).
func diskUse(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if info, err := d.Info(); err == nil {
			if st, ok := info.Sys().(*syscall.Stat_t); ok {
				n += st.Blocks * 512
			} else {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}
