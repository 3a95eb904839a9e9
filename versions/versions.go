// Package versions names the entries of .versions/: one read-only file per
// earlier version of a document, named
// <UTC time as 2006-01-02T15-04-05Z>_v<N><.ext> so that names sort in time
// order and keep the extension desktop apps need.
package versions

import (
	"path"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/dmsfs/dmsfs/remote"
)

// Dir is the name of the hidden per-directory entry.
const Dir = ".versions"

const timeLayout = "2006-01-02T15-04-05Z"

var nameRE = regexp.MustCompile(`^(\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}Z)_v(\d+)`)

// Name is the .versions/ entry for version n, made at t, of a file named file.
func Name(t time.Time, n int, file string) string {
	return t.UTC().Format(timeLayout) + "_v" + strconv.Itoa(n) + path.Ext(file)
}

// Parse returns the version number a name made by Name carries.
func Parse(name string) (n int, ok bool) {
	m := nameRE.FindStringSubmatch(name)
	if m == nil {
		return 0, false
	}
	n, err := strconv.Atoi(m[2])
	return n, err == nil
}

// Entry is one earlier version of one file.
type Entry struct {
	Name    string
	Version int
	File    remote.File
	Time    time.Time
}

// Earlier lists the versions of the file named file that came before the
// current one, oldest first. An empty file means the only file of a
// single-file document, whatever it was called then. A version whose content equals the one after
// it (another file of the document changed) is left out, so each entry is a
// distinct earlier content of the file.
func Earlier(history []remote.Version, file string) []Entry {
	if len(history) < 2 {
		return nil
	}
	var out []Entry
	for i, v := range history[:len(history)-1] {
		f, ok := fileIn(v, file)
		if !ok {
			continue
		}
		next, ok := fileIn(history[i+1], file)
		if ok && next.ContentID == f.ContentID {
			continue
		}
		out = append(out, Entry{Name: Name(v.Time, v.N, f.Name), Version: v.N, File: f, Time: v.Time})
	}
	slices.SortStableFunc(out, func(a, b Entry) int { return a.Time.Compare(b.Time) })
	return out
}

func fileIn(v remote.Version, name string) (remote.File, bool) {
	if name == "" {
		if len(v.Files) == 1 {
			return v.Files[0], true
		}
		return remote.File{}, false
	}
	for _, f := range v.Files {
		if f.Name == name {
			return f, true
		}
	}
	return remote.File{}, false
}
