package main

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"path/filepath"

	"github.com/spf13/pflag"

	"github.com/dmsfs/dmsfs/fs/core"
)

// cmdPin keeps (or, with unpin, stops keeping) the content of everything
// below PATH on disk, for offline use.
func cmdPin(what string, args []string, stdout, stderr io.Writer) error {
	fl := pflag.NewFlagSet(what, pflag.ContinueOnError)
	fl.SetOutput(stderr)
	fl.Usage = func() {
		fmt.Fprintf(stderr, "Usage: dmsfs %s PATH\n\n%s\n", what, map[string]string{
			"pin":   "Keeps the content of every file below PATH (inside a dmsfs mount) on disk in the cache\ndirectory, so that it reads offline and after a restart; files another client changes are\nfetched again. --pin-size of the mount bounds the disk used.",
			"unpin": "Stops keeping PATH's content on disk and frees it.",
		}[what])
	}
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fl.NArg() != 1 {
		return fmt.Errorf("%w: %s takes one PATH inside a mount", errUsage, what)
	}
	path, err := filepath.Abs(fl.Arg(0))
	if err != nil {
		return err
	}
	mnt, rel, err := findMount(path)
	if err != nil {
		return err
	}
	var rep core.PinReport
	if err := controlPost(mnt, what, url.Values{"path": {rel}}, &rep); err != nil {
		return err
	}
	if what == "pin" {
		fmt.Fprintf(stdout, "pinned %s: %d file(s), %s fetched now; %s kept on disk in all\n", path, rep.Files, humanBytes(rep.Fetched), humanBytes(rep.Used))
	} else {
		fmt.Fprintf(stdout, "unpinned %s: %d file(s) freed; %s kept on disk in all\n", path, rep.Files, humanBytes(rep.Used))
	}
	return nil
}
