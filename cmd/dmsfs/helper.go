package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"
)

// mount(8) runs /sbin/mount.fuse.dmsfs SOURCE MOUNTPOINT [-sfnv] [-N NS]
// [-o OPTIONS] for `mount -t fuse.dmsfs` and fstab lines of that type
// (util-linux mount(8), "External helpers"); through mount.fuse3 the
// same arguments come as `dmsfs SOURCE MOUNTPOINT -o OPTIONS`. Every
// mount flag is an option with _ for - (cache_dir=…, write_back=10s,
// allow_other, ro, config=…); the options that are mount(8)'s and
// systemd's are ignored. The mount runs in the background and the
// helper returns once it is ready.

// helperName is the name mount(8) looks for.
const helperName = "mount.fuse.dmsfs"

// ignoredOptions are mount(8)'s, the kernel's and systemd's, not ours.
var ignoredOptions = map[string]bool{
	"rw": true, "defaults": true, "auto": true, "noauto": true, "user": true, "users": true, "nouser": true,
	"owner": true, "group": true, "_netdev": true, "nofail": true, "dev": true, "nodev": true, "suid": true,
	"nosuid": true, "exec": true, "noexec": true, "atime": true, "noatime": true, "relatime": true,
	"strictatime": true, "nodiratime": true, "async": true, "default_permissions": true,
}

// helperArgs turns mount(8)'s arguments into `dmsfs mount` arguments;
// fake is -f (do everything but mount).
func helperArgs(args []string) (mountArgs []string, fake bool, err error) {
	var pos, opts []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-o" && i+1 < len(args):
			opts = append(opts, strings.Split(args[i+1], ",")...)
			i++
		case strings.HasPrefix(a, "-o") && len(a) > 2:
			opts = append(opts, strings.Split(a[2:], ",")...)
		case a == "-t" || a == "-N":
			i++ // the type (fuse.dmsfs), a mount namespace
		case a == "-s" || a == "-n" || a == "-v":
			// sloppy, no mtab, verbose: nothing to do
		case a == "-f":
			fake = true
		case strings.HasPrefix(a, "-") && len(a) > 1:
			return nil, false, fmt.Errorf("%w: %s: unknown argument %q (usage: %s SOURCE MOUNTPOINT [-o OPTIONS])", errUsage, helperName, a, helperName)
		default:
			pos = append(pos, a)
		}
	}
	if len(pos) != 2 {
		return nil, false, fmt.Errorf("%w: %s SOURCE MOUNTPOINT [-o OPTIONS]", errUsage, helperName)
	}
	flags, _ := mountFlagSet(io.Discard)
	for _, o := range opts {
		name, value, hasValue := strings.Cut(strings.TrimSpace(o), "=")
		switch {
		case name == "" || ignoredOptions[name] || strings.HasPrefix(name, "x-") || name == "comment":
			continue
		case name == "ro":
			mountArgs = append(mountArgs, "--read-only")
			continue
		case name == "daemon":
			continue // always
		}
		flag := strings.ReplaceAll(name, "_", "-")
		f := flags.Lookup(flag)
		if f == nil {
			return nil, false, fmt.Errorf("%w: unknown mount option %q (options are dmsfs mount's flags with _ for -, e.g. cache_dir=DIR, write_back=10s, allow_other, ro)", errUsage, name)
		}
		if hasValue {
			mountArgs = append(mountArgs, "--"+flag+"="+value)
		} else if f.Value.Type() == "bool" {
			mountArgs = append(mountArgs, "--"+flag)
		} else {
			return nil, false, fmt.Errorf("%w: mount option %s needs a value (%s=…)", errUsage, name, name)
		}
	}
	return append(mountArgs, "--daemon", pos[0], pos[1]), fake, nil
}

// cmdMountHelper is mount(8)'s helper.
func cmdMountHelper(args []string, stdout, stderr io.Writer) error {
	margs, fake, err := helperArgs(args)
	if err != nil {
		return err
	}
	if fake {
		fmt.Fprintln(stdout, "dmsfs mount", strings.Join(margs, " "))
		return nil
	}
	return cmdMount(margs, stdout, stderr)
}

// cmdInstallHelper links /sbin/mount.fuse.dmsfs (or DIR/…) to this
// executable, so that mount(8) and fstab lines of type fuse.dmsfs work.
func cmdInstallHelper(args []string, stdout, stderr io.Writer) error {
	fl := pflag.NewFlagSet("install-helper", pflag.ContinueOnError)
	fl.SetOutput(stderr)
	dir := fl.String("dir", "/sbin", "where mount(8) looks for helpers")
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	if exe, err = filepath.EvalSymlinks(exe); err != nil {
		return err
	}
	link := filepath.Join(*dir, helperName)
	if cur, err := os.Readlink(link); err == nil && cur == exe {
		fmt.Fprintf(stdout, "%s already points to %s\n", link, exe)
		return nil
	}
	tmp := link + ".new"
	_ = os.Remove(tmp)
	if err := os.Symlink(exe, tmp); err != nil {
		return fmt.Errorf("install %s: %w (run as root)", link, err)
	}
	if err := os.Rename(tmp, link); err != nil {
		return fmt.Errorf("install %s: %w", link, err)
	}
	fmt.Fprintf(stdout, "%s → %s: mount -t fuse.dmsfs and fstab lines of type fuse.dmsfs work now\n", link, exe)
	return nil
}
