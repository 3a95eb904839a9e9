// Command dmsfs mounts a document-management repository as a directory.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
)

const usage = `dmsfs mounts a document-management repository as a directory.

Usage:
  dmsfs mount [flags] [REMOTE] MOUNTPOINT   mount (no REMOTE: the embedded repository)
  dmsfs unmount MOUNTPOINT                  upload what is pending, with progress, then unmount
  dmsfs sync MOUNTPOINT                     wait until every pending upload is confirmed, with progress
  dmsfs status [--json] MOUNTPOINT          upload queue, cache use, last errors
  dmsfs publish [--yes|--dry-run] PATH      publish the Invenio draft that PATH is in
  dmsfs pin PATH / dmsfs unpin PATH         keep (or stop keeping) PATH's content on disk, for offline use
  dmsfs serve --protocol axelor|invenio|enaio [--data DIR] [--addr 127.0.0.1:PORT]
                                            run a protocol-faithful test server
  dmsfs config show [--config FILE] NAME    a remote's settings from the config file, secrets masked
  dmsfs install-helper [--dir /sbin]       link mount.fuse.dmsfs, for mount -t fuse.dmsfs and fstab
  dmsfs version

REMOTE is embedded:DIR, axelor+http(s)://[USER@]HOST[:PORT][/PATH],
invenio+http(s)://HOST[:PORT][/PATH] or enaio(s)://[USER@]HOST[:PORT][/CABINET/FOLDER…].
Run 'dmsfs mount --help' for the flags.
`

// errUsage marks errors caused by the command line (exit status 2).
var errUsage = errors.New("usage")

func main() {
	if filepath.Base(os.Args[0]) == helperName {
		os.Exit(run(append([]string{"mount-helper"}, os.Args[1:]...), os.Stdout, os.Stderr))
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "mount":
		err = cmdMount(args[1:], stdout, stderr)
	case "unmount", "umount":
		err = cmdUnmount(args[1:], stdout, stderr)
	case "sync":
		err = cmdSync(args[1:], stdout, stderr)
	case "status":
		err = cmdStatus(args[1:], stdout)
	case "serve":
		err = cmdServe(args[1:], stdout, stderr)
	case "publish":
		err = cmdPublish(args[1:], os.Stdin, stdout, stderr)
	case "mount-helper":
		err = cmdMountHelper(args[1:], stdout, stderr)
	case "install-helper":
		err = cmdInstallHelper(args[1:], stdout, stderr)
	case "pin", "unpin":
		err = cmdPin(args[0], args[1:], stdout, stderr)
	case "config":
		err = cmdConfig(args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, versionLine())
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		if len(args) >= 2 && strings.Contains(args[0], ":") && !strings.HasPrefix(args[0], "-") {
			// mount.fuse3 runs the subtype's program as SOURCE MOUNTPOINT -o OPTIONS.
			err = cmdMountHelper(args, stdout, stderr)
			break
		}
		err = fmt.Errorf("%w: unknown command %q (try 'dmsfs help')", errUsage, args[0])
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, pflag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintln(stderr, "dmsfs:", strings.TrimPrefix(err.Error(), "usage: "))
		return 2
	default:
		fmt.Fprintln(stderr, "dmsfs:", err)
		return 1
	}
}

// version is set at build time (make build: -X main.version=…); a plain
// go build or go install says the module version or "dev".
var version = ""

// versionLine is what `dmsfs version` prints: the version, the commit it
// was built from and the Go that built it.
func versionLine() string {
	v, commit, dirty := version, "", false
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version // go install …@version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	if v == "" {
		v = "dev"
	}
	line := "dmsfs " + v
	if commit != "" {
		line += " (commit " + commit[:min(12, len(commit))]
		if dirty {
			line += ", modified"
		}
		line += ")"
	}
	return line + " " + runtime.Version()
}

// byteSize is a pflag value for sizes like 256M or 2G.
type byteSize int64

func (b *byteSize) String() string { return strconv.FormatInt(int64(*b), 10) }
func (b *byteSize) Type() string   { return "size" }

func (b *byteSize) Set(s string) error {
	v, err := parseSize(s)
	if err != nil {
		return err
	}
	*b = byteSize(v)
	return nil
}

func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(strings.ToUpper(s))
	s = strings.TrimSuffix(strings.TrimSuffix(s, "B"), "I")
	mult := int64(1)
	if n := len(s); n > 0 {
		switch s[n-1] {
		case 'K':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		case 'T':
			mult = 1 << 40
		}
		if mult > 1 {
			s = s[:n-1]
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("not a size: %q (use e.g. 512M or 2G)", s)
	}
	return v * mult, nil
}
