package core

import (
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/dmsfs/dmsfs/remote"
)

// Repository names may hold characters a POSIX name cannot. They are mapped
// reversibly: "/" becomes %2F, NUL %00, the names "." and ".." become %2E
// and %2E%2E, and a "%" that would otherwise read as one of these escapes
// becomes %25. Any other "%" stays as it is, so "50% off.pdf" is shown
// unchanged.

// escapeCodes are the escapes Unescape decodes; a literal "%" before one of
// them must itself be escaped.
var escapeCodes = []string{"2F", "00", "25", "2E"}

// Escape maps a repository name to a name the mount shows.
func Escape(name string) string {
	switch name {
	case ".":
		return "%2E"
	case "..":
		return "%2E%2E"
	}
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		switch c := name[i]; c {
		case '/':
			b.WriteString("%2F")
		case 0:
			b.WriteString("%00")
		case '%':
			if i+3 <= len(name) && isEscapeCode(name[i+1:i+3]) {
				b.WriteString("%25")
			} else {
				b.WriteByte('%')
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// Unescape maps a name seen in the mount back to the repository name.
func Unescape(name string) string {
	switch name {
	case "%2E":
		return "."
	case "%2E%2E":
		return ".."
	}
	if !strings.Contains(name, "%") {
		return name
	}
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		if name[i] == '%' && i+3 <= len(name) {
			switch name[i+1 : i+3] {
			case "2F":
				b.WriteByte('/')
				i += 2
				continue
			case "00":
				b.WriteByte(0)
				i += 2
				continue
			case "25":
				b.WriteByte('%')
				i += 2
				continue
			}
		}
		b.WriteByte(name[i])
	}
	return b.String()
}

func isEscapeCode(s string) bool {
	for _, c := range escapeCodes {
		if s == c {
			return true
		}
	}
	return false
}

// withID inserts " (id)" before the extension: "a.txt" → "a (12).txt".
func withID(name string, id remote.ID) string {
	ext := path.Ext(name)
	if ext == name { // ".bashrc" has no extension to keep
		ext = ""
	}
	return strings.TrimSuffix(name, ext) + " (" + string(id) + ")" + ext
}

// MountNames gives each node of one folder its name in the mount: the
// escaped repository name, and for names that several nodes share, that name
// with a stable " (id)" suffix on every one of them, so that no node's name
// depends on which other nodes happen to exist.
func MountNames(nodes []remote.Node) map[string]remote.Node {
	count := make(map[string]int, len(nodes))
	for _, n := range nodes {
		count[Escape(n.Name)]++
	}
	out := make(map[string]remote.Node, len(nodes))
	sorted := append([]remote.Node(nil), nodes...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].ID < sorted[j].ID })
	for _, n := range sorted {
		name := Escape(n.Name)
		if count[name] > 1 {
			name = withID(name, n.ID)
		}
		if _, taken := out[name]; taken { // a real name equal to a suffixed one
			name = withID(name, n.ID)
		}
		out[name] = n
	}
	return out
}

// DefaultTempPatterns are the names editors, office apps and rsync give to
// lock and temporary files. Such files stay in the local spool and never
// become documents, unless renamed to a real name.
var DefaultTempPatterns = []string{
	".~lock.*#",               // LibreOffice lock file
	"~$*",                     // Microsoft Office owner file
	"~WRL*.tmp",               // Word temporary
	"~WRD*.tmp",               // Word temporary
	"lu*.tmp",                 // LibreOffice save temporary
	"*.swp", "*.swo", "*.swx", // vim swap files
	"4913",             // vim's probe for a writable directory
	"*~",               // backup files (vim, emacs, gedit)
	".#*",              // emacs lock
	".goutputstream-*", // GLib/GNOME save temporary
	".*.sw?",           // vim swap of a hidden file
	"*.part", ".~*",
}

// TempMatcher tells temp-file names from document names.
type TempMatcher struct {
	patterns []string
	rsync    bool
}

// NewTempMatcher uses the given glob patterns (filepath.Match syntax). With
// rsync true it also recognises rsync's temporaries, ".<name>.XXXXXX".
func NewTempMatcher(patterns []string, rsync bool) (*TempMatcher, error) {
	for _, p := range patterns {
		if _, err := filepath.Match(p, ""); err != nil {
			return nil, err
		}
	}
	return &TempMatcher{patterns: patterns, rsync: rsync}, nil
}

// IsTemp tells whether a file of this name is kept local.
func (m *TempMatcher) IsTemp(name string) bool {
	for _, p := range m.patterns {
		if ok, _ := filepath.Match(p, name); ok {
			return true
		}
	}
	return m.rsync && (isRsyncTemp(name) || isSedTemp(name))
}

// isSedTemp recognises GNU sed -i's temporary, "sedXXXXXX" beside the file
// it edits. As with rsync's, the six characters must hold a digit or a
// capital letter so that a word such as "sedation" stays a document (the
// all-small-letter names, one in 190, are uploaded and then renamed over
// the target: the target still gets one version).
func isSedTemp(name string) bool {
	return len(name) == 9 && name[:3] == "sed" && mkstempSuffix(name[3:])
}

// IsTempBeside is IsTemp that also knows rsync's temporaries whose six
// characters are all small letters (one in 190): ".<name>.xxxxxx" is one
// when a file <name> is beside it (exists says whether one is), as it is
// when rsync updates a file. Without that the name could be a real hidden
// file such as ".profile.backup".
func (m *TempMatcher) IsTempBeside(name string, exists func(string) bool) bool {
	if m.IsTemp(name) {
		return true
	}
	return m.rsync && rsyncShape(name) && exists(name[1:len(name)-7])
}

// rsyncShape tells whether name looks like ".<name>.XXXXXX", X one of
// [A-Za-z0-9] as mkstemp makes them.
func rsyncShape(name string) bool {
	if len(name) < 9 || name[0] != '.' || name[len(name)-7] != '.' {
		return false
	}
	for _, c := range name[len(name)-6:] {
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
}

// isRsyncTemp recognises rsync's temporaries on their own: a real hidden
// file such as ".profile.backup" has the same shape, so the six characters
// must hold a digit or capital letter, as 99.5 % of rsync's names do (see
// IsTempBeside for most of the rest; the others are uploaded like any
// file and then renamed over the target, which leaves the same result).
func isRsyncTemp(name string) bool {
	return rsyncShape(name) && mkstempSuffix(name[len(name)-6:])
}

// mkstempSuffix tells whether six characters from [A-Za-z0-9] hold a digit
// or a capital letter.
func mkstempSuffix(s string) bool {
	if len(s) != 6 {
		return false
	}
	mixed := false
	for _, c := range s {
		switch {
		case c >= '0' && c <= '9' || c >= 'A' && c <= 'Z':
			mixed = true
		case c >= 'a' && c <= 'z':
		default:
			return false
		}
	}
	return mixed
}
