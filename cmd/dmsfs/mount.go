package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/spf13/pflag"

	"github.com/dmsfs/dmsfs/cache"
	dfs "github.com/dmsfs/dmsfs/fs"
	"github.com/dmsfs/dmsfs/fs/core"
	"github.com/dmsfs/dmsfs/fs/upload"
	"github.com/dmsfs/dmsfs/internal/metrics"
	"github.com/dmsfs/dmsfs/remote"
	"github.com/dmsfs/dmsfs/remote/embedded"
	"github.com/dmsfs/dmsfs/remote/lazy"
	"github.com/dmsfs/dmsfs/remote/pointintime"
)

// daemonEnv marks the background child of `mount --daemon`.
const daemonEnv = "DMSFS_DAEMON_CHILD"

type mountFlags struct {
	cacheDir     string
	cacheSize    byteSize
	spoolSize    byteSize
	pinSize      byteSize
	readAhead    byteSize
	diskCache    byteSize
	listAhead    int
	filesAhead   int
	transfers    int
	dirCacheTime time.Duration
	pollInterval time.Duration
	at           string
	writeBack    time.Duration
	unlinkGrace  time.Duration
	readOnly     bool
	showVersions bool
	allowOther   bool
	data         string
	verbose      bool
	logFormat    string
	metricsAddr  string
	daemon       bool
	logFile      string
	tempPatterns []string
	user         string
	passwordFile string
	apiKeyFile   string
	tokenFile    string
	caFile       string
	insecure     bool
	timeout      time.Duration
	config       string
	// configSecrets are secrets from the config file, by the environment
	// variable that would otherwise hold them.
	configSecrets map[string]string
}

func mountFlagSet(stderr io.Writer) (*pflag.FlagSet, *mountFlags) {
	f := &mountFlags{cacheSize: 256 << 20, readAhead: 64 << 20}
	fl := pflag.NewFlagSet("mount", pflag.ContinueOnError)
	fl.SetOutput(stderr)
	fl.StringVar(&f.cacheDir, "cache-dir", "", "where the spool, journal and local attributes live (default $XDG_CACHE_HOME/dmsfs/<remote>)")
	fl.Var(&f.cacheSize, "cache-size", "memory for the read block cache, e.g. 512M or 2G")
	fl.Var(&f.spoolSize, "spool-size", "disk the spool may use for changed files not uploaded yet, e.g. 10G (writes beyond it get ENOSPC; default: the disk is the limit)")
	fl.Var(&f.pinSize, "pin-size", "disk that pinned content (dmsfs pin) may use, e.g. 20G (default: the disk is the limit)")
	fl.Var(&f.diskCache, "disk-cache-size", "disk in --cache-dir for whole files read from start to end (re-read from there, and on a --read-only mount straight by the kernel), e.g. 10G (default: none)")
	fl.Var(&f.readAhead, "read-ahead", "the most a sequential read fetches ahead (its window starts at 4M and doubles; at most half of --cache-size), e.g. 128M")
	fl.IntVar(&f.listAhead, "prefetch-listings", 8, "subfolder listings fetched ahead at once when a folder is listed (0: none)")
	fl.IntVar(&f.filesAhead, "prefetch-files", 8, "small files (up to 4 MiB) fetched ahead at once when a folder's files are read in order (0: none)")
	fl.IntVar(&f.transfers, "transfers", 4, "uploads of files over 1 MiB run at once by the write-back queue; small files up to 8 times as many")
	fl.DurationVar(&f.dirCacheTime, "dir-cache-time", 30*time.Second, "how long directory listings and attributes are trusted")
	fl.DurationVar(&f.pollInterval, "poll-interval", 15*time.Second, "how often to ask the repository what other clients changed (0: never; then changes show when listings expire)")
	fl.StringVar(&f.at, "at", "", "mount read-only as the repository was at this time: 2026-11-01T12:00 (local time), 2026-11-01T12:00:00Z or 2026-11-01")
	fl.DurationVar(&f.writeBack, "write-back", 0, "upload this long after close instead of during it (0: close waits for the server)")
	fl.DurationVar(&f.unlinkGrace, "unlink-grace", 2*time.Second, "how long an unlinked document stays on the server, hidden, so that a new file of its name becomes its next version")
	fl.BoolVar(&f.readOnly, "read-only", false, "mount read-only")
	fl.BoolVar(&f.showVersions, "show-hidden", false, "list the hidden views (.versions, .search; enaio, Invenio: .renditions; Axelor: /.attachments) in directory listings (they are always reachable by name)")
	fl.BoolVar(&f.showVersions, "show-versions", false, "the old name of --show-hidden")
	_ = fl.MarkHidden("show-versions")
	fl.BoolVar(&f.allowOther, "allow-other", false, "let other users access the mount (with default_permissions; needs user_allow_other in /etc/fuse.conf unless root)")
	fl.StringVar(&f.data, "data", "", "directory of the embedded repository (default $XDG_DATA_HOME/dmsfs/repo)")
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "log every remote operation (operation, object, duration, outcome) and other details")
	fl.StringVar(&f.logFormat, "log-format", "text", "log as text (key=value) or json (one object per line)")
	fl.StringVar(&f.metricsAddr, "metrics-addr", "", "serve Prometheus metrics at http://ADDR/metrics, e.g. 127.0.0.1:9464 (default: off)")
	fl.BoolVar(&f.daemon, "daemon", false, "run in the background once mounted")
	fl.StringVar(&f.logFile, "log-file", "", "write the log here (default: stderr; with --daemon, <cache-dir>/dmsfs.log)")
	fl.StringVar(&f.user, "user", "", "user name for the remote (or user@ in the URL)")
	fl.StringVar(&f.passwordFile, "password-file", "", "file holding the password (must not be readable by others); default: $DMSFS_PASSWORD")
	fl.StringVar(&f.apiKeyFile, "api-key-file", "", "file holding an Axelor API key, instead of user and password; default: $DMSFS_API_KEY")
	fl.StringVar(&f.tokenFile, "token-file", "", "file holding an Invenio personal access token (must not be readable by others); default: $DMSFS_TOKEN")
	fl.StringVar(&f.caFile, "ca-file", "", "https:// and enaios://: PEM file with the CA that signed the server's certificate (trusted besides the system's)")
	fl.BoolVar(&f.insecure, "insecure", false, "https:// and enaios://: do not check the server's certificate at all (a warning is logged)")
	fl.DurationVar(&f.timeout, "timeout", 2*time.Minute, "give up on a server that does not connect, or answer (HTTP: the headers; enaio: the next bytes), within this long; the request is retried or reported")
	fl.StringVar(&f.config, "config", defaultConfigPath(), "config file naming remotes, for REMOTE given as NAME:")
	fl.StringArrayVar(&f.tempPatterns, "temp-pattern", nil, "also keep files matching this glob local (repeatable); the defaults cover office apps, editors and rsync")
	fl.Usage = func() {
		fmt.Fprintf(stderr, "Usage: dmsfs mount [flags] [REMOTE] MOUNTPOINT\n\nREMOTE: embedded:DIR (default: the embedded repository in --data),\n        axelor+http(s)://[USER@]HOST[:PORT][/PATH]\n        invenio+http(s)://HOST[:PORT][/PATH]\n        enaio(s)://[USER@]HOST[:PORT][/CABINET/FOLDER…]\n        NAME: (a remote of the config file, see --config)\n\nFlags:\n%s", fl.FlagUsages())
	}
	return fl, f
}

func cmdMount(args []string, stdout, stderr io.Writer) error {
	fl, f := mountFlagSet(stderr)
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	var spec, mnt string
	switch fl.NArg() {
	case 1:
		mnt = fl.Arg(0)
	case 2:
		spec, mnt = fl.Arg(0), fl.Arg(1)
	default:
		return fmt.Errorf("%w: mount takes [REMOTE] MOUNTPOINT (see 'dmsfs mount --help')", errUsage)
	}
	mnt, err := filepath.Abs(mnt)
	if err != nil {
		return err
	}
	if f.transfers < 1 {
		return fmt.Errorf("%w: --transfers must be at least 1", errUsage)
	}
	if err := checkMountpoint(mnt); err != nil {
		return err
	}
	label, openRepo, err := parseRemote(spec, f)
	if err != nil {
		return err
	}
	var at time.Time
	if f.at != "" {
		if at, err = parseAt(f.at); err != nil {
			return err
		}
		f.readOnly = true
		label += "@" + at.UTC().Format(time.RFC3339) // its own cache: nothing of the present's spool
	}
	if f.cacheDir == "" {
		sum := sha256.Sum256([]byte(label))
		f.cacheDir = filepath.Join(xdgDir("XDG_CACHE_HOME", ".cache"), "dmsfs", hex.EncodeToString(sum[:6]))
	}
	if f.daemon && os.Getenv(daemonEnv) == "" {
		return startDaemon(args, f, mnt, stdout)
	}

	logOut := stderr
	if f.logFile == "" && f.daemon {
		f.logFile = filepath.Join(f.cacheDir, "dmsfs.log")
	}
	if f.logFile != "" {
		if err := os.MkdirAll(filepath.Dir(f.logFile), 0o700); err != nil {
			return err
		}
		lf, err := os.OpenFile(f.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("log file: %w", err)
		}
		defer lf.Close()
		logOut = lf
	}
	level := slog.LevelInfo
	if f.verbose {
		level = slog.LevelDebug
	}
	var handler slog.Handler
	switch f.logFormat {
	case "text":
		handler = slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: level})
	case "json":
		handler = slog.NewJSONHandler(logOut, &slog.HandlerOptions{Level: level})
	default:
		return fmt.Errorf("%w: --log-format is text or json, not %q", errUsage, f.logFormat)
	}
	log := slog.New(handler)

	if !at.IsZero() {
		present := openRepo
		openRepo = func(log *slog.Logger) (remote.Repository, func(), error) {
			r, closeRepo, err := present(log)
			if err != nil {
				return nil, nil, err
			}
			past, err := pointintime.At(r, at)
			if err != nil {
				closeRepo()
				return nil, nil, err
			}
			log.Info("showing the repository as it was", "at", at.Format(time.RFC3339))
			return past, closeRepo, nil
		}
	}
	err = serveMount(mnt, label, openRepo, f, log)
	if ready := readyPipe(); ready != nil && err != nil { // tell the waiting parent
		fmt.Fprintln(ready, err)
		ready.Close()
	}
	return err
}

// serveMount mounts and serves until unmounted.
func serveMount(mnt, label string, openRepo func(*slog.Logger) (remote.Repository, func(), error), f *mountFlags, log *slog.Logger) error {
	if os.Getenv("GOMEMLIMIT") == "" {
		// Keep the heap near what the block cache may hold: without a limit
		// the garbage of finished downloads doubles the footprint.
		debug.SetMemoryLimit(int64(f.cacheSize) + 64<<20)
	}
	inner, closeRepo, err := openRepo(log)
	switch caps, kept := keptCaps(f.cacheDir); {
	case err == nil:
		saveCaps(f.cacheDir, inner.Capabilities())
	case errors.Is(err, remote.ErrUnavailable) && kept && f.at == "":
		// Start offline from the tree an earlier mount kept; the
		// repository is opened once the server answers.
		log.Warn("the repository is unreachable: starting offline from the last known tree", "err", err)
		var mu sync.Mutex
		var closeInner func()
		inner = lazy.New(func(context.Context) (remote.Repository, error) {
			r, c, err := openRepo(log)
			if err == nil {
				mu.Lock()
				closeInner = c
				mu.Unlock()
				log.Info("the repository answers: opened")
			}
			return r, err
		}, caps, err)
		closeRepo = func() {
			mu.Lock()
			defer mu.Unlock()
			if closeInner != nil {
				closeInner()
			}
		}
	default:
		return err
	}
	closeRepo = sync.OnceFunc(closeRepo)
	defer closeRepo()
	backend, _, _ := strings.Cut(label, ":")
	backend = strings.TrimSuffix(strings.TrimSuffix(backend, "s"), "+http") // enaios, axelor+https → enaio, axelor
	m := metrics.New()
	repo := m.Wrap(inner, backend, log)
	spool, err := cache.OpenSpool(f.cacheDir)
	if err != nil {
		return err
	}
	defer func() { _ = spool.Close() }() // Close again is a no-op
	if f.at != "" {
		// The past takes no uploads: the spool's would be refused.
		if recs, err := spool.Pending(); err != nil || len(recs) > 0 {
			return fmt.Errorf("the cache directory %s holds %d upload(s) of an earlier mount; mount without --at first to upload them, or give --at its own --cache-dir", f.cacheDir, len(recs))
		}
	}
	patterns := append(append([]string(nil), dfs.DefaultTempPatterns...), f.tempPatterns...)
	ctx := context.Background()
	grace := f.unlinkGrace
	if grace <= 0 {
		grace = -1 // none: 0 would mean the default
	}
	fsys, err := dfs.New(ctx, repo, spool, dfs.Options{
		DirCacheTime: f.dirCacheTime, PollInterval: f.pollInterval, WriteBack: f.writeBack, UnlinkGrace: grace, ReadOnly: f.readOnly,
		ShowVersions: f.showVersions, TempPatterns: patterns, CacheSize: int64(f.cacheSize), SpoolLimit: int64(f.spoolSize), PinLimit: int64(f.pinSize),
		ReadAhead: int64(f.readAhead), DiskCacheSize: int64(f.diskCache), PrefetchListings: noneIfZero(f.listAhead), PrefetchFiles: noneIfZero(f.filesAhead), Transfers: f.transfers,
		UID: uint32(os.Getuid()), GID: uint32(os.Getgid()), Logger: log,
	})
	if err != nil {
		return err
	}
	closeFS := sync.OnceFunc(fsys.Close)
	defer closeFS()
	m.WatchFS(fsys.FS)
	if f.metricsAddr != "" {
		ln, err := net.Listen("tcp", f.metricsAddr)
		if err != nil {
			return fmt.Errorf("--metrics-addr: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", m.Handler())
		msrv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = msrv.Serve(ln) }()
		defer func() { _ = msrv.Close() }()
		log.Info("metrics", "url", "http://"+ln.Addr().String()+"/metrics")
	}
	srv, err := fsys.Mount(mnt, f.allowOther)
	if err != nil {
		return fmt.Errorf("cannot mount %s: %w (is fuse3 installed and /dev/fuse usable?)", mnt, err)
	}
	if err := srv.WaitMount(); err != nil {
		return fmt.Errorf("mount %s: %w", mnt, err)
	}

	var once sync.Once
	var unmountErr error
	var ours atomic.Bool // unmounted by dmsfs unmount or a signal, not umount(8)
	unmount := func(ctx context.Context, progress func(dfs.Queue)) error {
		once.Do(func() {
			ours.Store(true)
			err := fsys.Sync(ctx, progress)
			refused := errors.Is(err, upload.ErrRefused)
			if err != nil && !refused {
				log.Warn("unmounting with uploads left in the spool; they upload at the next mount", "err", err, "cache_dir", f.cacheDir)
			}
			if unmountErr = unmountServer(srv, mnt); unmountErr != nil || !refused {
				return
			}
			// Refused for good: unmounted all the same (waiting would not
			// help), with the bytes kept in lost+found and a failure said.
			unmountErr = lostError(fsys.SaveRefused())
		})
		return unmountErr
	}
	ctl, err := startControl(mnt, fsys, unmount)
	if err != nil {
		_ = srv.Unmount()
		return err
	}
	defer ctl.close()
	if ready := readyPipe(); ready != nil {
		fmt.Fprintln(ready, "ready")
		ready.Close()
	}
	log.Info("mounted", "remote", label, "mountpoint", mnt, "cache_dir", f.cacheDir, "write_back", f.writeBack.String())

	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	// After a plain umount, a signal cancels finishing the uploads.
	afterCtx, afterCancel := context.WithTimeout(context.Background(), afterUmountUploads)
	defer afterCancel()
	var umounted atomic.Bool
	go func() {
		<-sigs
		if umounted.Load() {
			afterCancel()
			return
		}
		log.Info("signal received: uploading pending files, then unmounting (signal again to leave them in the spool)",
			"pending", fsys.Status().Queue.Files)
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			<-sigs
			log.Warn("second signal: pending uploads stay in the spool and upload at the next mount",
				"pending", fsys.Status().Queue.Files, "cache_dir", f.cacheDir)
			cancel()
		}()
		var p progress
		err := unmount(ctx, func(q dfs.Queue) { log.Info(p.line(q)) })
		if err != nil {
			log.Error("unmount failed", "err", err)
		}
	}()
	srv.Wait()
	umounted.Store(true)
	if q := fsys.Status().Queue; q.Files > 0 && ours.Load() {
		log.Warn("unmounted with uploads pending; they stay in the spool and upload at the next mount",
			"pending", q.Files, "cache_dir", f.cacheDir)
	} else if q.Files > 0 {
		// Unmounted by umount(8) (dmsfs unmount syncs first): the spool
		// still has everything, so finish the uploads before exiting;
		// what does not get through in time stays there.
		log.Info("unmounted with uploads pending; finishing them before exiting (a signal leaves them in the spool)",
			"pending", q.Files, "bytes", q.Bytes, "within", afterUmountUploads.String())
		var p progress
		err := fsys.Sync(afterCtx, func(q dfs.Queue) { log.Info(p.line(q)) })
		if q := fsys.Status().Queue; err != nil || q.Files > 0 {
			log.Warn("uploads left in the spool; they upload at the next mount", "pending", q.Files, "cache_dir", f.cacheDir, "err", err)
		} else {
			log.Info("pending uploads done")
		}
	}
	// Let go of the cache directory and the repository before the answer
	// to `dmsfs unmount` ends, so that a mount right after it finds both
	// free (the journal's lock: "in use by another dmsfs mount").
	closeFS()
	_ = spool.Close()
	closeRepo()
	ctl.Release()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = ctl.srv.Shutdown(sctx) // let an unmount request finish its answer
	log.Info("unmounted", "mountpoint", mnt)
	return nil
}

// keptCaps are the capabilities the repository had at the last mount with
// this cache directory (false: none mounted it yet).
func keptCaps(cacheDir string) (remote.Capabilities, bool) {
	var c remote.Capabilities
	b, err := os.ReadFile(filepath.Join(cacheDir, "tree", "capabilities.json"))
	return c, err == nil && json.Unmarshal(b, &c) == nil
}

func saveCaps(cacheDir string, c remote.Capabilities) {
	b, _ := json.Marshal(c)
	if os.MkdirAll(filepath.Join(cacheDir, "tree"), 0o700) == nil {
		_ = os.WriteFile(filepath.Join(cacheDir, "tree", "capabilities.json"), b, 0o600)
	}
}

// parseAt reads --at: RFC 3339, or a date and time (or a date) in local
// time.
func parseAt(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%w: --at %q: give a time as 2026-11-01T12:00 (local), 2026-11-01T12:00:00Z or 2026-11-01", errUsage, s)
}

// afterUmountUploads bounds how long the process finishes uploads after
// a plain umount before it leaves them in the spool.
const afterUmountUploads = 10 * time.Minute

// lostError tells of uploads the repository refused for good and where
// their bytes are.
func lostError(lost []core.Lost) error {
	var b strings.Builder
	for _, l := range lost {
		fmt.Fprintf(&b, "\n  %s: %s", l.Path, l.Reason)
		if l.Saved != "" {
			fmt.Fprintf(&b, "\n    its bytes are in %s", l.Saved)
		} else {
			b.WriteString("\n    its bytes stay in the cache directory's spool")
		}
	}
	return fmt.Errorf("unmounted, but the repository refused %d upload(s) for good:%s", len(lost), b.String())
}

// unmountServer unmounts, retrying while the mount point is busy.
func unmountServer(srv *fuse.Server, mnt string) error {
	var err error
	for range 30 {
		if err = srv.Unmount(); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("cannot unmount %s: %w (is a process still using it? see 'fuser -m %s')", mnt, err, mnt)
}

func checkMountpoint(mnt string) error {
	st, err := os.Stat(mnt)
	switch {
	case errors.Is(err, syscall.ENOTCONN):
		return fmt.Errorf("%s is a dead dmsfs mount (its process was killed); run 'dmsfs unmount %s' first", mnt, mnt)
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("mount point %s does not exist (create it with 'mkdir -p %s')", mnt, mnt)
	case err != nil:
		return fmt.Errorf("mount point: %w", err)
	case !st.IsDir():
		return fmt.Errorf("mount point %s is not a directory", mnt)
	}
	if resp, err := controlClient(mnt).Get("http://dmsfs/status"); err == nil {
		resp.Body.Close()
		return fmt.Errorf("%s is already a dmsfs mount", mnt)
	}
	// The kernel may still answer stat from its attribute cache for a
	// while after the process died; the mount table does not forget.
	if fstype, ok := mountAt(mnt); ok && fstype == "fuse.dmsfs" {
		return fmt.Errorf("%s is a dead dmsfs mount (its process is gone); run 'dmsfs unmount %s' first", mnt, mnt)
	}
	return nil
}

// mountAt tells whether /proc/self/mountinfo lists a mount at path, and
// its file system type.
func mountAt(path string) (fstype string, ok bool) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", false
	}
	for _, line := range strings.Split(string(b), "\n") {
		// id parent major:minor root mountpoint options [optional…] - fstype source super
		f := strings.Fields(line)
		if len(f) < 5 || unescapeMountinfo(f[4]) != path {
			continue
		}
		fstype, ok = "", true // the last one listed is the top of the stack
		for i, x := range f {
			if x == "-" && i+1 < len(f) {
				fstype = f[i+1]
			}
		}
	}
	return fstype, ok
}

// unescapeMountinfo undoes the octal escapes (\040 for a space) of
// /proc/self/mountinfo.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, "\\") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// parseRemote turns REMOTE into a label (for the cache directory) and an
// opener.
func parseRemote(spec string, f *mountFlags) (string, func(*slog.Logger) (remote.Repository, func(), error), error) {
	if m := remoteName.FindStringSubmatch(spec); m != nil && m[1] != "embedded" {
		s, err := readConfigSection(f.config, m[1])
		if err != nil {
			return "", nil, err
		}
		if remoteName.MatchString(s["remote"]) {
			return "", nil, fmt.Errorf("%w: [%s] in %s: remote must be a URL or embedded:DIR, not another name", errUsage, m[1], f.config)
		}
		if err := applyConfig(s, f); err != nil {
			return "", nil, err
		}
		spec = s["remote"]
	}
	dir := ""
	switch {
	case spec == "":
		dir = f.data
		if dir == "" {
			dir = filepath.Join(xdgDir("XDG_DATA_HOME", ".local/share"), "dmsfs", "repo")
		}
	case strings.HasPrefix(spec, "embedded:"):
		dir = strings.TrimPrefix(spec, "embedded:")
		if dir == "" {
			return "", nil, fmt.Errorf("%w: embedded:DIR needs a directory", errUsage)
		}
		if f.data != "" {
			return "", nil, fmt.Errorf("%w: give the embedded repository's directory either as embedded:DIR or with --data, not both", errUsage)
		}
	case strings.HasPrefix(spec, "axelor+http://"), strings.HasPrefix(spec, "axelor+https://"):
		return axelorRemote(spec, f)
	case strings.HasPrefix(spec, "invenio+http://"), strings.HasPrefix(spec, "invenio+https://"):
		return invenioRemote(spec, f)
	case strings.HasPrefix(spec, "enaio://"), strings.HasPrefix(spec, "enaios://"):
		return enaioRemote(spec, f)
	default:
		return "", nil, fmt.Errorf("%w: unknown remote %q (expected embedded:DIR, axelor+http(s)://…, invenio+http(s)://… or enaio://…)", errUsage, spec)
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", nil, err
	}
	readOnly := f.readOnly
	return "embedded:" + dir, func(*slog.Logger) (remote.Repository, func(), error) {
		r, err := embedded.Open(dir, embedded.Options{ReadOnly: readOnly})
		if err != nil {
			return nil, nil, err
		}
		return r, func() { _ = r.Close() }, nil
	}, nil
}

// systemDirs stand in for the XDG directories of root when there is no
// $HOME (a mount at boot by systemd or mount(8)): the spool must not land
// in /tmp.
var systemDirs = map[string]string{"XDG_CACHE_HOME": "/var/cache", "XDG_DATA_HOME": "/var/lib", "XDG_CONFIG_HOME": "/etc"}

func xdgDir(env, fallback string) string {
	if d := os.Getenv(env); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		if sys, ok := systemDirs[env]; ok && os.Getuid() == 0 {
			return sys
		}
		home = os.TempDir()
	}
	return filepath.Join(home, fallback)
}

// readyPipe is the pipe to a waiting `mount --daemon` parent, until
// something was said on it.
var readyPipe = sync.OnceValue(func() *os.File {
	if os.Getenv(daemonEnv) == "" {
		return nil
	}
	return os.NewFile(3, "ready")
})

// startDaemon runs the mount in a background process and returns once it is
// mounted (or failed).
func startDaemon(args []string, f *mountFlags, mnt string, stdout io.Writer) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	cmd := exec.Command(exe, append([]string{"mount"}, args...)...)
	cmd.Env = append(os.Environ(), daemonEnv+"=1")
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start background mount: %w", err)
	}
	w.Close()
	// One line: "ready", or why the mount failed.
	msg, _ := bufio.NewReader(io.LimitReader(r, 64<<10)).ReadString('\n')
	r.Close()
	line := strings.TrimSpace(msg)
	if line != "ready" {
		_ = cmd.Wait()
		if line == "" {
			line = "the background process exited; see " + filepath.Join(f.cacheDir, "dmsfs.log")
		}
		return errors.New(line)
	}
	pid := cmd.Process.Pid
	_ = cmd.Process.Release()
	logFile := f.logFile
	if logFile == "" {
		logFile = filepath.Join(f.cacheDir, "dmsfs.log")
	}
	fmt.Fprintf(stdout, "mounted at %s (pid %d, log %s); 'dmsfs unmount %s' to stop\n", mnt, pid, logFile, mnt)
	return nil
}

// noneIfZero maps a flag's 0 (none) to the core's negative (0 there is
// the default).
func noneIfZero(n int) int {
	if n <= 0 {
		return -1
	}
	return n
}
