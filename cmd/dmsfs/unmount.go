package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	dfs "github.com/dmsfs/dmsfs/fs"
)

// mountpointArg parses a command that takes only MOUNTPOINT.
func mountpointArg(cmd string, args []string, stderr io.Writer) (string, error) {
	fl := pflag.NewFlagSet(cmd, pflag.ContinueOnError)
	fl.SetOutput(stderr)
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return "", err
		}
		return "", fmt.Errorf("%w: %v", errUsage, err)
	}
	if fl.NArg() != 1 {
		return "", fmt.Errorf("%w: %s takes MOUNTPOINT", errUsage, cmd)
	}
	return filepath.Abs(fl.Arg(0))
}

// postProgress asks the mount's control socket to do what, copying its
// progress lines to stdout; errNoMount when no dmsfs answers.
func postProgress(mnt, what string, stdout io.Writer) error {
	resp, err := controlClient(mnt).Post("http://dmsfs/"+what, "text/plain", nil)
	if err != nil {
		return errNoMount
	}
	defer resp.Body.Close()
	failure, err := streamLines(resp.Body, stdout, time.Now, quietLines)
	if err != nil {
		return fmt.Errorf("%s %s: %w", what, mnt, err)
	}
	if len(failure) > 0 {
		return errors.New(strings.Join(failure, "\n"))
	}
	return nil
}

var errNoMount = errors.New("no dmsfs mount answers")

func cmdUnmount(args []string, stdout, stderr io.Writer) error {
	mnt, err := mountpointArg("unmount", args, stderr)
	if err != nil {
		return err
	}
	if err := postProgress(mnt, "unmount", stdout); !errors.Is(err, errNoMount) {
		return err
	}
	// No dmsfs process answers: the mount is dead (killed) or not dmsfs's.
	if _, serr := os.Stat(mnt); !errors.Is(serr, syscall.ENOTCONN) && !isMountpoint(mnt) {
		return fmt.Errorf("%s is not mounted", mnt)
	}
	if err := syscall.Unmount(mnt, syscall.MNT_DETACH); err != nil {
		if out, ferr := exec.Command("fusermount3", "-u", "-z", mnt).CombinedOutput(); ferr != nil {
			return fmt.Errorf("unmount %s: %v (%s)", mnt, err, strings.TrimSpace(string(out)))
		}
	}
	fmt.Fprintf(stdout, "unmounted %s; its dmsfs process was gone: pending uploads stay in the cache directory and upload at the next mount\n", mnt)
	return nil
}

// cmdSync waits until the mount's pending uploads are confirmed by the
// server (with --write-back, close does not wait for that), printing the
// queue as it shrinks. Failing uploads are retried until they succeed or
// the command is interrupted; their data stays in the spool either way.
func cmdSync(args []string, stdout, stderr io.Writer) error {
	mnt, err := mountpointArg("sync", args, stderr)
	if err != nil {
		return err
	}
	err = postProgress(mnt, "sync", stdout)
	if errors.Is(err, errNoMount) {
		return fmt.Errorf("no dmsfs mount answers at %s", mnt)
	}
	return err
}

// isMountpoint tells whether path is listed in /proc/self/mountinfo.
func isMountpoint(path string) bool {
	_, ok := mountAt(path)
	return ok
}

func cmdStatus(args []string, stdout io.Writer) error {
	fl := pflag.NewFlagSet("status", pflag.ContinueOnError)
	asJSON := fl.Bool("json", false, "print the status as JSON")
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fl.NArg() != 1 {
		return fmt.Errorf("%w: status takes MOUNTPOINT", errUsage)
	}
	mnt, err := filepath.Abs(fl.Arg(0))
	if err != nil {
		return err
	}
	resp, err := controlClient(mnt).Get("http://dmsfs/status")
	if err != nil {
		return fmt.Errorf("no dmsfs mount answers at %s", mnt)
	}
	defer resp.Body.Close()
	var st dfs.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return fmt.Errorf("status of %s: %w", mnt, err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	fmt.Fprintf(stdout, "mount point:  %s\n", mnt)
	if st.OfflineSince.IsZero() {
		fmt.Fprintln(stdout, "repository:   online")
	} else {
		fmt.Fprintf(stdout, "repository:   offline since %s (%s); changes are kept and upload when it answers; %d read(s) of content not held here failed\n",
			st.OfflineSince.Local().Format(time.DateTime), time.Since(st.OfflineSince).Round(time.Second), st.OfflineMisses)
	}
	fmt.Fprintf(stdout, "uploads:      %s\n", progressLine(st.Queue))
	for _, it := range st.Queue.Items {
		line := fmt.Sprintf("  %s (%s)", it.Path, humanBytes(it.Size))
		if it.Running {
			line = fmt.Sprintf("  %s (%s of %s sent, %d%%)", it.Path, humanBytes(it.Sent), humanBytes(it.Size), percent(it.Sent, it.Size))
		}
		if it.Tries > 0 {
			line += fmt.Sprintf(", %d failed tries, last: %s", it.Tries, it.LastError)
		}
		fmt.Fprintln(stdout, line)
	}
	if len(st.Queue.Refused) > 0 {
		fmt.Fprintf(stdout, "refused:      %d upload(s) the repository refused for good (not retried; kept in the mount, at unmount in %s)\n",
			len(st.Queue.Refused), filepath.Join(st.CacheDir, "lost+found"))
		for _, it := range st.Queue.Refused {
			fmt.Fprintf(stdout, "  %s (%s): %s\n", it.Path, humanBytes(it.Size), it.LastError)
		}
	}
	fmt.Fprintf(stdout, "write-back:   %s\n", st.WriteBack)
	fmt.Fprintf(stdout, "block cache:  %s of %s\n", humanBytes(st.CacheUsed), humanBytes(st.CacheSize))
	fmt.Fprintf(stdout, "cache dir:    %s\n", st.CacheDir)
	if len(st.LastErrors) == 0 {
		fmt.Fprintln(stdout, "last errors:  none")
	} else {
		fmt.Fprintln(stdout, "last errors:")
		for _, e := range st.LastErrors {
			fmt.Fprintf(stdout, "  %s %s %s: %s\n", e.Time.Format("15:04:05"), e.Op, e.Path, e.Message)
		}
	}
	return nil
}
