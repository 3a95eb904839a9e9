package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dmsfs/dmsfs/fs/fstest"
	"github.com/dmsfs/dmsfs/internal/faultproxy"
	"github.com/dmsfs/dmsfs/remote"
	"github.com/dmsfs/dmsfs/remote/axelor"
	"github.com/dmsfs/dmsfs/remote/axelor/axelortest"
	"github.com/dmsfs/dmsfs/remote/embedded"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "dmsfs-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "dmsfs")
	args := []string{"build", "-o", binary}
	if raceEnabled {
		args = append(args, "-race")
	}
	if out, err := exec.Command("go", append(args, ".")...).CombinedOutput(); err != nil {
		os.Stderr.Write(out)
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// cli is one test's environment for the dmsfs binary.
type cli struct {
	t        *testing.T
	data     string
	cacheDir string
	mnt      string
	env      []string
}

func newCLI(t *testing.T) *cli {
	fstest.RequireFUSE(t)
	tmp := t.TempDir()
	c := &cli{t: t, data: filepath.Join(tmp, "repo"), cacheDir: filepath.Join(tmp, "cache"), mnt: filepath.Join(tmp, "mnt")}
	require.NoError(t, os.MkdirAll(c.mnt, 0o755))
	c.env = append(os.Environ(), "XDG_RUNTIME_DIR="+filepath.Join(tmp, "run"))
	t.Cleanup(func() {
		exec.Command("umount", "-l", c.mnt).Run()
	})
	return c
}

func (c *cli) cmd(args ...string) *exec.Cmd {
	cmd := exec.Command(binary, args...)
	cmd.Env = c.env
	return cmd
}

// run runs dmsfs and returns stdout, stderr and the exit code.
func (c *cli) run(args ...string) (string, string, int) {
	cmd := c.cmd(args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else {
		require.NoError(c.t, err)
	}
	return out.String(), errb.String(), code
}

// start runs a foreground mount and waits until it answers.
func (c *cli) start(extra ...string) (*exec.Cmd, *lockedBuffer) {
	args := append([]string{"mount", "--data", c.data, "--cache-dir", c.cacheDir}, extra...)
	cmd := c.cmd(append(args, c.mnt)...)
	log := &lockedBuffer{}
	cmd.Stderr = log
	require.NoError(c.t, cmd.Start())
	require.Eventually(c.t, func() bool {
		_, _, code := c.run("status", c.mnt)
		return code == 0
	}, 20*time.Second, 50*time.Millisecond, "mount did not come up: %s", log)
	return cmd, log
}

// lockedBuffer collects a process's output while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// repo opens the embedded repository (only while no mount holds it).
func (c *cli) repo() *embedded.Repo {
	r, err := embedded.Open(c.data, embedded.Options{})
	require.NoError(c.t, err)
	c.t.Cleanup(func() { r.Close() })
	return r
}

func findDoc(t *testing.T, r remote.Repository, name string) (remote.Node, bool) {
	ctx := context.Background()
	root, err := r.Root(ctx)
	require.NoError(t, err)
	kids, err := r.List(ctx, root.ID)
	require.NoError(t, err)
	for _, k := range kids {
		if k.Name == name {
			return k, true
		}
	}
	return remote.Node{}, false
}

func readDoc(t *testing.T, r remote.Repository, n remote.Node) []byte {
	rc, err := r.Open(context.Background(), n.ID, n.Files[0].Name, 0, -1)
	require.NoError(t, err)
	defer rc.Close()
	b, err := io.ReadAll(rc)
	require.NoError(t, err)
	return b
}

func TestBadArgumentsGiveOneClearLine(t *testing.T) {
	c := &cli{t: t, env: os.Environ()}
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"mount", "/nonexistent/mnt"}, 1, "does not exist"},
		{[]string{"mount", "--bogus", "/tmp"}, 2, "unknown flag: --bogus"},
		{[]string{"mount"}, 2, "mount takes [REMOTE] MOUNTPOINT"},
		{[]string{"mount", "ftp://x", "/tmp"}, 2, "unknown remote"},
		{[]string{"mount", "--cache-size", "lots", "/tmp"}, 2, "not a size"},
		{[]string{"frobnicate"}, 2, "unknown command"},
		{[]string{"status", "/tmp"}, 1, "no dmsfs mount answers"},
		{[]string{"unmount", "/tmp"}, 1, "is not mounted"},
	} {
		_, stderr, code := c.run(tc.args...)
		require.Equal(t, tc.code, code, "%v: %s", tc.args, stderr)
		require.Contains(t, stderr, tc.msg, tc.args)
		require.NotContains(t, stderr, "goroutine", "no stack trace")
		require.LessOrEqual(t, strings.Count(strings.TrimSpace(stderr), "\n"), 20)
	}
}

// Acceptance 5: a closed file survives SIGKILL before its upload.
func TestWriteBackSurvivesSIGKILL(t *testing.T) {
	c := newCLI(t)
	cmd, _ := c.start("--write-back", "30s")
	body := fstest.WriteFile(t, filepath.Join(c.mnt, "precious.bin"), 5<<20+3, 7)
	require.NoError(t, cmd.Process.Kill())
	cmd.Wait()

	_, err := os.Stat(c.mnt)
	require.ErrorIs(t, err, syscall.ENOTCONN, "the mount is dead")
	_, stderr, code := c.run("mount", "--data", c.data, "--cache-dir", c.cacheDir, c.mnt)
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "dead dmsfs mount")
	out, stderr, code := c.run("unmount", c.mnt)
	require.Zero(t, code, stderr)
	require.Contains(t, out, "pending uploads stay in the cache directory")

	r := c.repo()
	_, found := findDoc(t, r, "precious.bin")
	require.False(t, found, "it was not uploaded before the kill")
	r.Close()

	cmd, log := c.start()
	got, err := os.ReadFile(filepath.Join(c.mnt, "precious.bin"))
	require.NoError(t, err)
	require.Equal(t, body, got)
	out, stderr, code = c.run("unmount", c.mnt)
	require.Zero(t, code, stderr)
	require.Contains(t, out, "unmounted")
	require.NoError(t, cmd.Wait())
	require.Contains(t, log.String(), "uploaded from the spool")

	r = c.repo()
	n, found := findDoc(t, r, "precious.bin")
	require.True(t, found)
	require.Equal(t, body, readDoc(t, r, n))
}

func TestSIGTERMUploadsThenUnmounts(t *testing.T) {
	c := newCLI(t)
	cmd, log := c.start("--write-back", "1h")
	require.NoError(t, os.WriteFile(filepath.Join(c.mnt, "a.txt"), []byte("pending"), 0o644))
	out, _, code := c.run("status", c.mnt)
	require.Zero(t, code)
	require.Contains(t, out, "1 upload(s) pending")
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cmd.Wait())
	require.Contains(t, log.String(), "uploading pending files")
	r := c.repo()
	n, found := findDoc(t, r, "a.txt")
	require.True(t, found, log.String())
	require.Equal(t, "pending", string(readDoc(t, r, n)))
}

// TestSyncWaitsForUploads: with --write-back, `dmsfs sync` returns when
// the server has everything, showing the queue shrink.
func TestSyncWaitsForUploads(t *testing.T) {
	c := newCLI(t)
	cmd, log := c.start("--write-back", "1h")
	for i := range 20 {
		require.NoError(t, os.WriteFile(filepath.Join(c.mnt, fmt.Sprintf("f%02d.txt", i)), []byte(fmt.Sprint(i)), 0o644))
	}
	out, _, code := c.run("status", c.mnt)
	require.Zero(t, code)
	require.Contains(t, out, "20 upload(s) pending")
	out, stderr, code := c.run("sync", c.mnt)
	require.Zero(t, code, stderr)
	require.Regexp(t, `(?m)^\d+ upload\(s\) pending`, out, "progress while the queue shrinks")
	require.Contains(t, out, "all uploads done")
	out, _, code = c.run("status", c.mnt)
	require.Zero(t, code)
	require.Contains(t, out, "uploads:      all uploads done")
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cmd.Wait())
	require.Contains(t, log.String(), "pending=0", "nothing was left for the unmount")
	r := c.repo()
	for i := range 20 {
		n, found := findDoc(t, r, fmt.Sprintf("f%02d.txt", i))
		require.True(t, found)
		require.Equal(t, fmt.Sprint(i), string(readDoc(t, r, n)))
	}
}

func TestDaemonAndUnmountWithProgress(t *testing.T) {
	c := newCLI(t)
	out, stderr, code := c.run("mount", "--daemon", "--write-back", "1h", "--data", c.data, "--cache-dir", c.cacheDir, c.mnt)
	require.Zero(t, code, stderr)
	require.Contains(t, out, "mounted at "+c.mnt)
	for _, name := range []string{"one.txt", "two.txt", "three.txt"} {
		require.NoError(t, os.WriteFile(filepath.Join(c.mnt, name), []byte(name), 0o644))
	}
	out, stderr, code = c.run("unmount", c.mnt)
	require.Zero(t, code, stderr)
	require.Contains(t, out, "3 upload(s) pending")
	require.Contains(t, out, "all uploads done")
	require.Contains(t, out, "unmounted")
	// The process let go of the cache directory and the repository before
	// unmount returned: a mount with them may follow at once.
	db, err := os.Open(filepath.Join(c.cacheDir, "state.db"))
	require.NoError(t, err)
	defer db.Close()
	require.NoError(t, syscall.Flock(int(db.Fd()), syscall.LOCK_EX|syscall.LOCK_NB), "the journal is unlocked")
	require.NoError(t, syscall.Flock(int(db.Fd()), syscall.LOCK_UN))
	r, err := embedded.Open(c.data, embedded.Options{})
	require.NoError(t, err)
	defer r.Close()
	_, found := findDoc(t, r, "three.txt")
	require.True(t, found)
}

// serveAxelor runs `dmsfs serve --protocol axelor` and returns its URL and
// data directory.
func (c *cli) serveAxelor() (string, string) {
	url, data := c.serve("axelor")
	require.Contains(c.t, url, "axelor+http://")
	return url, data
}

// mountForeground starts `dmsfs mount ARGS… MOUNTPOINT` and waits until the
// mount answers `dmsfs status`; its stderr is the returned log.
func (c *cli) mountForeground(args ...string) (*exec.Cmd, *lockedBuffer) {
	c.t.Helper()
	cmd := c.cmd(append(append([]string{"mount"}, args...), c.mnt)...)
	log := &lockedBuffer{}
	cmd.Stderr = log
	require.NoError(c.t, cmd.Start())
	require.Eventually(c.t, func() bool {
		_, _, code := c.run("status", c.mnt)
		return code == 0
	}, 20*time.Second, 50*time.Millisecond, "mount did not come up: %s", log)
	return cmd, log
}

// serve runs `dmsfs serve --protocol` and returns the URL it prints and its
// data directory.
func (c *cli) serve(protocol string, extra ...string) (string, string) {
	data := filepath.Join(c.t.TempDir(), protocol)
	cmd := c.cmd(append([]string{"serve", "--protocol", protocol, "--data", data, "--addr", "127.0.0.1:0"}, extra...)...)
	out, err := cmd.StdoutPipe()
	require.NoError(c.t, err)
	require.NoError(c.t, cmd.Start())
	c.t.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() })
	buf := make([]byte, 4096)
	var text string
	require.Eventually(c.t, func() bool {
		n, _ := out.Read(buf)
		text += string(buf[:n])
		return strings.Contains(text, "URL: ")
	}, 10*time.Second, 10*time.Millisecond)
	url := strings.TrimSpace(strings.SplitN(strings.SplitN(text, "URL: ", 2)[1], "\n", 2)[0])
	secret := map[string]string{"axelor": "--password-file ", "invenio": "--token-file ", "enaio": "--password-file "}[protocol]
	require.Contains(c.t, text, secret+filepath.Join(data, strings.TrimSuffix(strings.TrimPrefix(secret, "--"), "-file ")))
	return url, data
}

// The filesystem over `dmsfs serve --protocol axelor`: copy, diff, and a
// write-back upload that survives SIGKILL.
func TestServeAxelorMountAndSurviveKill(t *testing.T) {
	c := newCLI(t)
	url, data := c.serveAxelor()
	creds := []string{"--user", "dmsfs", "--password-file", filepath.Join(data, "password"), "--cache-dir", c.cacheDir}
	start := func(extra ...string) (*exec.Cmd, *lockedBuffer) {
		return c.mountForeground(append(append(creds, extra...), url)...)
	}

	cmd, _ := start()
	src := filepath.Join(t.TempDir(), "src")
	for i := range 30 {
		fstest.WriteFile(t, filepath.Join(src, "sub dir", strings.Repeat("ä", i%3)+string(rune('a'+i))+".bin"), i*3000, uint64(i))
	}
	out, err := exec.Command("cp", "-r", src, filepath.Join(c.mnt, "tree")).CombinedOutput()
	require.NoError(t, err, string(out))
	out, err = exec.Command("diff", "-r", src, filepath.Join(c.mnt, "tree")).CombinedOutput()
	require.NoError(t, err, string(out))
	_, stderr, code := c.run("unmount", c.mnt)
	require.Zero(t, code, stderr)
	require.NoError(t, cmd.Wait())

	cmd, _ = start("--write-back", "30s")
	body := fstest.WriteFile(t, filepath.Join(c.mnt, "precious.bin"), 2<<20+1, 3)
	require.NoError(t, cmd.Process.Kill())
	cmd.Wait()
	_, stderr, code = c.run("unmount", c.mnt)
	require.Zero(t, code, stderr)

	cmd, log := start("-v")
	got, err := os.ReadFile(filepath.Join(c.mnt, "precious.bin"))
	require.NoError(t, err)
	require.Equal(t, body, got)
	require.Contains(t, log.String(), "uploaded from the spool")
	_, stderr, code = c.run("unmount", c.mnt)
	require.Zero(t, code, stderr)
	require.NoError(t, cmd.Wait())
	password, err := os.ReadFile(filepath.Join(data, "password"))
	require.NoError(t, err)
	require.NotContains(t, log.String(), strings.TrimSpace(string(password)), "the verbose log holds no secret")
	require.Contains(t, log.String(), "level=DEBUG", "the log was verbose")
}

// The filesystem over `dmsfs serve --protocol invenio`: a record made with
// mkdir, files copied in, `dmsfs publish` showing and publishing the draft,
// and a later change kept in a new draft until the next publish.
func TestServeInvenioMountAndPublish(t *testing.T) {
	c := newCLI(t)
	url, data := c.serve("invenio", "--s3")
	require.True(t, strings.HasPrefix(url, "invenio+http://"), url)
	tokenFile := filepath.Join(data, "token")
	cmd, log := c.mountForeground("--token-file", tokenFile, "--cache-dir", c.cacheDir, "-v", url)

	src := filepath.Join(t.TempDir(), "src")
	for i := range 12 {
		fstest.WriteFile(t, filepath.Join(src, []string{"", "raw/"}[i%2]+string(rune('a'+i))+".dat"), i*5000, uint64(i))
	}
	out, err := exec.Command("cp", "-r", src, filepath.Join(c.mnt, "Survey 2026")).CombinedOutput()
	require.NoError(t, err, string(out))
	out, err = exec.Command("diff", "-r", src, filepath.Join(c.mnt, "Survey 2026")).CombinedOutput()
	require.NoError(t, err, string(out))

	stdout, stderr, code := c.run("publish", "--dry-run", filepath.Join(c.mnt, "Survey 2026", "raw"))
	require.Zero(t, code, stderr)
	require.Contains(t, stdout, "will be published as version 1")
	require.Contains(t, stdout, "+ raw/b.dat")
	cmdP := c.cmd("publish", filepath.Join(c.mnt, "Survey 2026"))
	cmdP.Stdin = strings.NewReader("n\n")
	o, err := cmdP.Output()
	require.NoError(t, err)
	require.Contains(t, string(o), "Not published.")
	stdout, stderr, code = c.run("publish", "--yes", filepath.Join(c.mnt, "Survey 2026"))
	require.Zero(t, code, stderr)
	require.Contains(t, stdout, "Published \"Survey 2026\" as version 1")

	require.NoError(t, os.WriteFile(filepath.Join(c.mnt, "Survey 2026", "a.dat"), []byte("changed"), 0o644))
	stdout, stderr, code = c.run("publish", "--yes", filepath.Join(c.mnt, "Survey 2026", "a.dat"))
	require.Zero(t, code, stderr)
	require.Contains(t, stdout, "version 2")
	require.Contains(t, stdout, "M a.dat")
	names, err := os.ReadDir(filepath.Join(c.mnt, "Survey 2026", ".versions", "a.dat"))
	require.NoError(t, err)
	require.Len(t, names, 1)
	old, err := os.ReadFile(filepath.Join(c.mnt, "Survey 2026", ".versions", "a.dat", names[0].Name()))
	require.NoError(t, err)
	want, err := os.ReadFile(filepath.Join(src, "a.dat"))
	require.NoError(t, err)
	require.Equal(t, want, old)

	_, stderr, code = c.run("publish", "--yes", filepath.Join(c.mnt, "Survey 2026"))
	require.Zero(t, code, stderr)
	_, stderr, code = c.run("unmount", c.mnt)
	require.Zero(t, code, stderr)
	require.NoError(t, cmd.Wait())
	token, err := os.ReadFile(tokenFile)
	require.NoError(t, err)
	require.NotContains(t, log.String(), strings.TrimSpace(string(token)), "the verbose log holds no token")
}

// The filesystem over `dmsfs serve --protocol enaio --tls`, mounted from a
// folder down: the sample documents, a copied tree, the certificate
// checked against --ca-file, no password in the verbose log.
func TestServeEnaioMountOverTLS(t *testing.T) {
	c := newCLI(t)
	url, data := c.serve("enaio", "--tls")
	require.True(t, strings.HasPrefix(url, "enaios://"), url)
	pwFile := filepath.Join(data, "password")
	_, stderr, code := c.run("mount", "--user", "dmsfs", "--password-file", pwFile, "--cache-dir", c.cacheDir, url, c.mnt)
	require.NotZero(t, code)
	require.Contains(t, stderr, "not trusted", "without --ca-file the self-signed certificate is refused")

	cmd, log := c.mountForeground("--user", "dmsfs", "--password-file", pwFile, "--ca-file", filepath.Join(data, "ca.pem"),
		"--cache-dir", c.cacheDir, "-v", url+"/Akten/Beispielakte")
	ls, err := exec.Command("ls", c.mnt).CombinedOutput()
	require.NoError(t, err, string(ls))
	require.Equal(t, "Lieferschein\nRechnungen\n", string(ls))

	src := filepath.Join(t.TempDir(), "src")
	for i := range 20 {
		fstest.WriteFile(t, filepath.Join(src, []string{"", "2026/Q1/"}[i%2]+fmt.Sprintf("Beleg %02d.pdf", i)), i*7000, uint64(i))
	}
	out, err := exec.Command("cp", "-r", src, filepath.Join(c.mnt, "Belege")).CombinedOutput()
	require.NoError(t, err, string(out))
	out, err = exec.Command("diff", "-r", src, filepath.Join(c.mnt, "Belege")).CombinedOutput()
	require.NoError(t, err, string(out))
	require.NoError(t, os.WriteFile(filepath.Join(c.mnt, "Belege", "Beleg 00.pdf"), []byte("zweite Fassung"), 0o644))
	vs, err := os.ReadDir(filepath.Join(c.mnt, "Belege", ".versions", "Beleg 00.pdf"))
	require.NoError(t, err)
	require.Len(t, vs, 1)

	_, stderr, code = c.run("unmount", c.mnt)
	require.Zero(t, code, stderr)
	require.NoError(t, cmd.Wait())
	pw, err := os.ReadFile(pwFile)
	require.NoError(t, err)
	require.NotContains(t, log.String(), strings.TrimSpace(string(pw)), "the verbose log holds no password")
}

// TLS is checked by default for https remotes; --ca-file adds a CA,
// --insecure turns the check off and says so in the log.
func TestHTTPSCertificateChecks(t *testing.T) {
	c := newCLI(t)
	srv, err := axelortest.New(t.TempDir(), axelortest.Options{Users: map[string]string{"dmsfs": "tls-test-password"}})
	require.NoError(t, err)
	hs := httptest.NewTLSServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); srv.Close() })
	pw := filepath.Join(t.TempDir(), "pw")
	require.NoError(t, os.WriteFile(pw, []byte("tls-test-password"), 0o600))
	ca := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: hs.Certificate().Raw}), 0o600))
	url := "axelor+" + hs.URL
	creds := []string{"--user", "dmsfs", "--password-file", pw, "--cache-dir", c.cacheDir}

	_, stderr, code := c.run(append(append([]string{"mount"}, creds...), url, c.mnt)...)
	require.NotZero(t, code)
	require.Contains(t, stderr, "certificate", "an unknown CA is refused by default")

	for _, flag := range []string{"--ca-file=" + ca, "--insecure"} {
		cmd, log := c.mountForeground(append(creds, flag, url)...)
		require.NoError(t, os.WriteFile(filepath.Join(c.mnt, "x.txt"), []byte(flag), 0o644))
		_, stderr, code = c.run("unmount", c.mnt)
		require.Zero(t, code, stderr)
		require.NoError(t, cmd.Wait())
		require.Equal(t, flag == "--insecure", strings.Contains(log.String(), "certificate is not checked"), flag)
	}
}

// TestConfigFileRemote: `dmsfs mount work: MOUNTPOINT` takes the URL, the
// user and the password from the config file's [work] section; a config
// file holding a password that others can read is refused.
func TestConfigFileRemote(t *testing.T) {
	c := newCLI(t)
	url, data := c.serveAxelor()
	password, err := os.ReadFile(filepath.Join(data, "password"))
	require.NoError(t, err)
	cfg := filepath.Join(t.TempDir(), "config")
	// README's example as it stands, comments and all, with this server's
	// values in place of the example's.
	text := "[other]\nremote = embedded:/nowhere\n\n" + readmeConfigExample(t)
	text = strings.NewReplacer("axelor+https://dms.example.com/axelor", url, "alice", "dmsfs",
		"= …", "= "+strings.TrimSpace(string(password)), "/etc/ssl/our-ca.pem", "").Replace(text)
	require.NoError(t, os.WriteFile(cfg, []byte(text), 0o644))

	_, stderr, code := c.run("mount", "--config", cfg, "--cache-dir", c.cacheDir, "work:", c.mnt)
	require.NotZero(t, code)
	require.Contains(t, stderr, "can be read by others; run 'chmod 600")
	require.NotContains(t, stderr, strings.TrimSpace(string(password)))

	require.NoError(t, os.Chmod(cfg, 0o600))
	_, stderr, code = c.run("mount", "--config", cfg, "--cache-dir", c.cacheDir, "nosuch:", c.mnt)
	require.Equal(t, 2, code)
	require.Contains(t, stderr, "no remote [nosuch]")

	stdout, stderr, code := c.run("config", "show", "--config", cfg, "work")
	require.Zero(t, code, stderr)
	require.Contains(t, stdout, "remote = "+url+"\n")
	require.Contains(t, stdout, "password = ******** (set)")
	require.NotContains(t, stdout, strings.TrimSpace(string(password)))

	bad := filepath.Join(t.TempDir(), "bad")
	require.NoError(t, os.WriteFile(bad, []byte("[a]\nremote = embedded:/x\n\n[b]\nremote = embedded:/y\npasword = typo\n"), 0o600))
	_, stderr, code = c.run("config", "show", "--config", bad, "a")
	require.NotZero(t, code)
	require.Contains(t, stderr, "line 6: [b] has an unknown key \"pasword\"")

	cmd, log := c.mountForeground("--config", cfg, "--cache-dir", c.cacheDir, "-v", "work:")
	require.NoError(t, os.WriteFile(filepath.Join(c.mnt, "from-config.txt"), []byte("configured"), 0o644))
	got, err := os.ReadFile(filepath.Join(c.mnt, "from-config.txt"))
	require.NoError(t, err)
	require.Equal(t, "configured", string(got))
	_, stderr, code = c.run("unmount", c.mnt)
	require.Zero(t, code, stderr)
	require.NoError(t, cmd.Wait())
	require.Contains(t, log.String(), "level=DEBUG")
	require.NotContains(t, log.String(), strings.TrimSpace(string(password)), "the verbose log holds no secret")
}

// TestSecondSignalLeavesUploadsInTheSpool: the server is gone, so the
// unmount after SIGTERM cannot finish its uploads; a second SIGTERM ends
// dmsfs at once, saying that the uploads stay in the spool, and the next
// mount (with the server back) uploads them.
func TestSecondSignalLeavesUploadsInTheSpool(t *testing.T) {
	c := newCLI(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	data := filepath.Join(t.TempDir(), "axelor")
	startServer := func() *exec.Cmd {
		cmd := c.cmd("serve", "--protocol", "axelor", "--data", data, "--addr", addr)
		require.NoError(t, cmd.Start())
		t.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() })
		require.Eventually(t, func() bool {
			conn, err := net.Dial("tcp", addr)
			if err == nil {
				conn.Close()
			}
			return err == nil
		}, 10*time.Second, 20*time.Millisecond)
		return cmd
	}
	server := startServer()
	args := []string{"--user", "dmsfs", "--password-file", filepath.Join(data, "password"), "--cache-dir", c.cacheDir, "axelor+http://" + addr}

	cmd, log := c.mountForeground(append([]string{"--write-back", "1h"}, args...)...)
	require.NoError(t, os.WriteFile(filepath.Join(c.mnt, "pending.txt"), []byte("kept in the spool"), 0o644))
	require.NoError(t, server.Process.Signal(syscall.SIGTERM))
	server.Wait()

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.Eventually(t, func() bool { return strings.Contains(log.String(), "signal received") }, 10*time.Second, 20*time.Millisecond)
	time.Sleep(500 * time.Millisecond) // the drain is trying the dead server
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("dmsfs did not end after the second signal:\n%s", log)
	}
	require.Contains(t, log.String(), "second signal: pending uploads stay in the spool")
	require.Contains(t, log.String(), "pending=1")

	startServer()
	cmd, log = c.mountForeground(args...)
	got, err := os.ReadFile(filepath.Join(c.mnt, "pending.txt"))
	require.NoError(t, err)
	require.Equal(t, "kept in the spool", string(got))
	require.Contains(t, log.String(), "uploaded from the spool")
	_, stderr, code := c.run("unmount", c.mnt)
	require.Zero(t, code, stderr)
	require.NoError(t, cmd.Wait())
}

// A permanently refused upload (the Axelor server's name blocklist) does
// not hold anything up: `dmsfs sync` and `dmsfs unmount` return at once,
// exit non-zero and name the file and the server's reason; the other
// uploads complete; after unmount the bytes are in lost+found.
func TestRefusedUploadGoesToLostFound(t *testing.T) {
	c := newCLI(t)
	url, data := c.serve("axelor", "--upload-blocklist", `\.exe$`)
	creds := []string{"--user", "dmsfs", "--password-file", filepath.Join(data, "password"), "--cache-dir", c.cacheDir}
	cmd, _ := c.mountForeground(append(append(creds, "--write-back", "1h"), url)...)

	// A shell redirect, as a user saves: bash ignores the close error.
	out, err := exec.Command("bash", "-c", "printf 'keep me\\n' > "+filepath.Join(c.mnt, "tool.exe")+
		"; printf 'fine\\n' > "+filepath.Join(c.mnt, "notes.txt")).CombinedOutput()
	require.NoError(t, err, string(out))

	start := time.Now()
	_, stderr, code := c.run("sync", c.mnt)
	require.NotZero(t, code, "sync reports the refusal")
	require.Contains(t, stderr, "/tool.exe")
	require.Contains(t, stderr, "File name is not allowed")
	require.Less(t, time.Since(start), time.Minute, "sync does not retry a refusal")

	status, _, code := c.run("status", c.mnt)
	require.Zero(t, code)
	require.Contains(t, status, "refused:")
	require.Contains(t, status, "/tool.exe")
	b, err := os.ReadFile(filepath.Join(c.mnt, "tool.exe"))
	require.NoError(t, err, "the bytes stay in the mount until unmount")
	require.Equal(t, "keep me\n", string(b))

	stdout, stderr, code := c.run("unmount", c.mnt)
	require.NotZero(t, code, "unmount reports the refusal: %s", stdout)
	lost := filepath.Join(c.cacheDir, "lost+found", "tool.exe")
	require.Contains(t, stderr, lost)
	require.NoError(t, cmd.Wait())
	b, err = os.ReadFile(lost)
	require.NoError(t, err)
	require.Equal(t, "keep me\n", string(b))

	// notes.txt was uploaded; tool.exe is not in the repository.
	cmd, _ = c.mountForeground(append(creds, url)...)
	b, err = os.ReadFile(filepath.Join(c.mnt, "notes.txt"))
	require.NoError(t, err)
	require.Equal(t, "fine\n", string(b))
	_, err = os.Stat(filepath.Join(c.mnt, "tool.exe"))
	require.ErrorIs(t, err, os.ErrNotExist)
	_, stderr, code = c.run("unmount", c.mnt)
	require.Zero(t, code, stderr)
	require.NoError(t, cmd.Wait())
}

// Mounting over a killed mount at once (while the kernel may still answer
// stat from its attribute cache) is refused as a dead mount, read from
// /proc/self/mountinfo; nothing is stacked, and one unmount clears it.
func TestMountOverKilledMountIsRefused(t *testing.T) {
	c := newCLI(t)
	cmd, _ := c.mountForeground("--cache-dir", c.cacheDir, "embedded:"+c.data)
	require.NoError(t, os.WriteFile(filepath.Join(c.mnt, "a.txt"), []byte("a"), 0o644))
	for _, p := range []string{c.mnt, filepath.Join(c.mnt, "a.txt")} {
		_, err := os.Stat(p) // the kernel caches the attributes it got
		require.NoError(t, err)
	}
	require.NoError(t, cmd.Process.Kill())
	cmd.Wait()

	second := c.cmd("mount", "--cache-dir", c.cacheDir, "embedded:"+c.data, c.mnt)
	var errb lockedBuffer
	second.Stderr = &errb
	require.NoError(t, second.Start())
	stop := time.AfterFunc(20*time.Second, func() { second.Process.Kill() }) // a stacked mount would stay
	err := second.Wait()
	stop.Stop()
	require.Error(t, err, "the mount is refused")
	require.Contains(t, errb.String(), "dead dmsfs mount")
	mounts := func() int {
		b, err := os.ReadFile("/proc/self/mountinfo")
		require.NoError(t, err)
		n := 0
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) > 4 && f[4] == c.mnt {
				n++
			}
		}
		return n
	}
	require.Equal(t, 1, mounts(), "no second mount stacked on the dead one")
	_, stderr, code := c.run("unmount", c.mnt)
	require.Zero(t, code, stderr)
	require.Zero(t, mounts(), "one unmount clears it")
}

// readmeConfigExample is the config file example of README.md, from its
// [work] line to the blank line after it, unindented.
func readmeConfigExample(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	_, rest, ok := strings.Cut(string(b), "    [work]\n")
	require.True(t, ok, "README has the config example")
	block, _, _ := strings.Cut(rest, "\n\n")
	var out strings.Builder
	out.WriteString("[work]\n")
	for _, line := range strings.Split(block, "\n") {
		out.WriteString(strings.TrimPrefix(line, "    ") + "\n")
	}
	require.Contains(t, out.String(), "#", "the example keeps its comments")
	return out.String()
}

// TestMetricsAndVerboseLog (issue 18): with --metrics-addr, the metrics
// after a copy in and a read back count what was done: one Insert, the
// bytes up and down, block cache misses and then a hit; -v with
// --log-format json logs one line per repository call, without the
// password.
func TestMetricsAndVerboseLog(t *testing.T) {
	c := newCLI(t)
	url, data := c.serveAxelor()
	pw := filepath.Join(data, "password")
	secret, err := os.ReadFile(pw)
	require.NoError(t, err)
	addr := freeAddr(t)
	cmd, log := c.mountForeground("--user", "dmsfs", "--password-file", pw, "--cache-dir", c.cacheDir,
		"--metrics-addr", addr, "-v", "--log-format", "json", url)
	body := bytes.Repeat([]byte("metrics "), 40000) // 320,000 bytes
	require.NoError(t, os.WriteFile(filepath.Join(c.mnt, "m.bin"), body, 0o644))
	require.NoError(t, exec.Command("sh", "-c", "echo 3 > /proc/sys/vm/drop_caches").Run())
	for range 2 { // the second read finds the blocks in dmsfs's cache
		got, err := exec.Command("dd", "if="+filepath.Join(c.mnt, "m.bin"), "iflag=direct", "bs=1M", "status=none").Output()
		require.NoError(t, err)
		require.Equal(t, len(body), len(got))
	}

	metrics := scrape(t, "http://"+addr+"/metrics")
	require.Equal(t, 1.0, metrics[`dmsfs_remote_requests_total{backend="axelor",op="Insert",outcome="ok"}`], "one document made")
	require.GreaterOrEqual(t, metrics[`dmsfs_remote_bytes_total{backend="axelor",direction="up"}`], float64(len(body)))
	require.GreaterOrEqual(t, metrics[`dmsfs_remote_bytes_total{backend="axelor",direction="down"}`], float64(len(body)))
	require.Greater(t, metrics[`dmsfs_cache_misses_total`], 0.0)
	require.Greater(t, metrics[`dmsfs_cache_hits_total`], 0.0)
	require.Equal(t, 0.0, metrics[`dmsfs_upload_queue_files`])
	require.Greater(t, metrics[`dmsfs_remote_request_duration_seconds_count{backend="axelor",op="Insert"}`], 0.0)

	_, stderr, code := c.run("unmount", c.mnt)
	require.Zero(t, code, stderr)
	require.NoError(t, cmd.Wait())
	calls := 0
	for _, line := range strings.Split(strings.TrimSpace(log.String()), "\n") {
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &rec), "a JSON log line: %s", line)
		if rec["msg"] == "remote" {
			calls++
			require.Contains(t, rec, "op")
			require.Contains(t, rec, "duration")
			require.Contains(t, rec, "outcome")
		}
	}
	var requests float64
	for k, v := range metrics {
		if strings.HasPrefix(k, "dmsfs_remote_requests_total{") {
			requests += v
		}
	}
	require.GreaterOrEqual(t, float64(calls), requests, "a log line per call counted")
	require.NotContains(t, log.String(), strings.TrimSpace(string(secret)), "no secret in the log")
}

// freeAddr is a loopback address with a port free a moment ago.
func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// scrape reads Prometheus's text format: "name{labels}" → value.
func scrape(t *testing.T, url string) map[string]float64 {
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		require.NoError(t, err, line)
		out[line[:i]] = v
	}
	return out
}

// TestMountHelperAndFstab (issue 18): with the helper installed, real
// mount(8) mounts with `-t fuse.dmsfs … -o cache_dir=…,write_back=5s,
// allow_other` and from an fstab line; a plain umount(8) right after a
// write with write-back pending leaves the file on the server (the
// process finishes the upload before it exits).
func TestMountHelperAndFstab(t *testing.T) {
	c := newCLI(t)
	link := filepath.Join("/sbin", helperName)
	old, hadOld := os.Readlink(link)
	stdout, stderr, code := c.run("install-helper")
	require.Zero(t, code, stderr)
	require.Contains(t, stdout, link)
	t.Cleanup(func() {
		_ = os.Remove(link)
		if hadOld == nil {
			_ = os.Symlink(old, link)
		}
	})
	mount := func(args ...string) {
		t.Helper()
		cmd := exec.Command("mount", args...)
		cmd.Env = c.env
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "mount %v: %s", args, out)
	}
	umountAndWait := func() {
		t.Helper()
		out, err := exec.Command("umount", c.mnt).CombinedOutput()
		require.NoError(t, err, "%s", out)
		// The process is gone once the repository's lock is free.
		require.Eventually(t, func() bool {
			r, err := embedded.Open(c.data, embedded.Options{})
			if err == nil {
				r.Close()
			}
			return err == nil
		}, time.Minute, 50*time.Millisecond, "the dmsfs process did not exit after umount")
	}

	mount("-t", "fuse.dmsfs", "embedded:"+c.data, c.mnt, "-o", "cache_dir="+c.cacheDir+",write_back=5s,allow_other,_netdev,x-systemd.automount")
	fstype, ok := mountAt(c.mnt)
	require.True(t, ok)
	require.Equal(t, "fuse.dmsfs", fstype)
	require.NoError(t, os.WriteFile(filepath.Join(c.mnt, "umounted.txt"), []byte("kept"), 0o644))
	_, _, code = c.run("status", c.mnt)
	require.Zero(t, code, "the control socket answers")
	umountAndWait()
	r := c.repo()
	root, err := r.Root(context.Background())
	require.NoError(t, err)
	kids, err := r.List(context.Background(), root.ID)
	require.NoError(t, err)
	require.Len(t, kids, 1, "the write-back upload was finished after umount")
	rc, err := r.Open(context.Background(), kids[0].ID, kids[0].Files[0].Name, 0, -1)
	require.NoError(t, err)
	got, _ := io.ReadAll(rc)
	rc.Close()
	require.Equal(t, "kept", string(got))
	require.NoError(t, r.Close())

	fstab := filepath.Join(t.TempDir(), "fstab")
	line := fmt.Sprintf("embedded:%s %s fuse.dmsfs cache_dir=%s,nofail,_netdev,noauto 0 0\n", c.data, c.mnt, c.cacheDir)
	require.NoError(t, os.WriteFile(fstab, []byte(line), 0o644))
	mount("-T", fstab, c.mnt)
	got, err = os.ReadFile(filepath.Join(c.mnt, "umounted.txt"))
	require.NoError(t, err)
	require.Equal(t, "kept", string(got))
	umountAndWait()

	out, err := exec.Command("mount", "-t", "fuse.dmsfs", "embedded:"+c.data, c.mnt, "-o", "bogus_option").CombinedOutput()
	require.Error(t, err)
	require.Contains(t, string(out), `unknown mount option "bogus_option"`)
}

// TestSystemdUnitsInREADME: the unit files README gives pass
// systemd-analyze verify.
func TestSystemdUnitsInREADME(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("no systemd-analyze")
	}
	b, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	dir := t.TempDir()
	unit := regexp.MustCompile("`[^`]*/([a-z-]+\\.(?:mount|automount|service))`[^\\n]*\\n\\n((?:    .*\\n|\\n)+)")
	var files []string
	for _, m := range unit.FindAllStringSubmatch(string(b), -1) {
		var text strings.Builder
		for _, l := range strings.Split(strings.TrimRight(m[2], "\n"), "\n") {
			text.WriteString(strings.TrimPrefix(l, "    ") + "\n")
		}
		body := strings.ReplaceAll(text.String(), "/usr/local/bin/dmsfs", binary)
		p := filepath.Join(dir, m[1])
		require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
		files = append(files, p)
	}
	require.Len(t, files, 3, "README gives a .mount, an .automount and a user .service")
	for _, f := range files {
		out, err := exec.Command("systemd-analyze", "verify", "--man=no", f).CombinedOutput()
		require.NoError(t, err, "%s: %s", filepath.Base(f), out)
		require.Empty(t, strings.TrimSpace(string(out)), "%s", filepath.Base(f))
	}
}

// TestSyncShowsByteProgress (issue 18): `dmsfs sync` while a large
// write-back upload runs (through a proxy adding 40 ms per request)
// reports the bytes sent as they grow, with the rate, the time left and
// the file's own share; `dmsfs status` shows how far the file got.
func TestSyncShowsByteProgress(t *testing.T) {
	c := newCLI(t)
	url, data := c.serveAxelor()
	proxy := faultproxy.Start(t, strings.TrimPrefix(url, "axelor+"))
	proxy.SetLatency(40 * time.Millisecond)
	cmd, _ := c.mountForeground("--user", "dmsfs", "--password-file", filepath.Join(data, "password"),
		"--cache-dir", c.cacheDir, "--write-back", "100ms", "axelor+"+proxy.URL)
	size := 80 << 20
	fstest.WriteFile(t, filepath.Join(c.mnt, "large.bin"), size, 3)

	// status while it runs names the file with its bytes sent.
	require.Eventually(t, func() bool {
		out, _, _ := c.run("status", c.mnt)
		return strings.Contains(out, "large.bin (") && strings.Contains(out, "sent, ")
	}, 30*time.Second, 20*time.Millisecond, "status shows the upload under way")

	start := time.Now()
	sync := c.cmd("sync", c.mnt)
	outPipe, err := sync.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, sync.Start())
	var lines []string
	var gaps []time.Duration
	last := start
	sc := bufio.NewScanner(outPipe)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		gaps = append(gaps, time.Since(last))
		last = time.Now()
	}
	require.NoError(t, sync.Wait())
	t.Logf("sync took %s; gaps %v; lines:\n%s", time.Since(start).Round(time.Millisecond), gaps, strings.Join(lines, "\n"))
	require.Equal(t, "all uploads done", lines[len(lines)-1])
	sentLine := regexp.MustCompile(`^1 upload\(s\) pending: ([0-9.]+) MiB of 80\.0 MiB sent \((\d+)%\).*; large\.bin \d+% of 80\.0 MiB`)
	var percents []int
	for _, l := range lines {
		if m := sentLine.FindStringSubmatch(l); m != nil {
			p, _ := strconv.Atoi(m[2])
			percents = append(percents, p)
		}
	}
	require.GreaterOrEqual(t, len(percents), 2, "byte progress while it runs: %q", lines)
	require.True(t, slices.IsSorted(percents), "%v", percents)
	require.Regexp(t, `MiB/s, about \d+s left`, strings.Join(lines, "\n"))
	_, stderr, code := c.run("unmount", c.mnt)
	require.Zero(t, code, stderr)
	require.NoError(t, cmd.Wait())
}

// TestTwoMountsSeeEachOther (issue 16): two dmsfs processes on one Axelor
// server, the second with --poll-interval 2s: a file the first saves,
// creates, renames or deletes shows so in the second's ls and cat (whose
// pages the kernel had cached) within a poll interval or two; the time
// each took is logged.
func TestTwoMountsSeeEachOther(t *testing.T) {
	c := newCLI(t)
	url, data := c.serveAxelor()
	creds := []string{"--user", "dmsfs", "--password-file", filepath.Join(data, "password")}
	mntB := filepath.Join(t.TempDir(), "b")
	require.NoError(t, os.Mkdir(mntB, 0o755))
	a, _ := c.mountForeground(append(creds, "--cache-dir", c.cacheDir, url)...)
	b := c.cmd(append(append([]string{"mount"}, creds...), "--cache-dir", filepath.Join(t.TempDir(), "cb"), "--poll-interval", "2s", url, mntB)...)
	blog := &lockedBuffer{}
	b.Stderr = blog
	require.NoError(t, b.Start())
	require.Eventually(t, func() bool { _, _, code := c.run("status", mntB); return code == 0 }, 20*time.Second, 50*time.Millisecond, "%s", blog)

	require.NoError(t, os.WriteFile(filepath.Join(c.mnt, "shared.txt"), []byte("first"), 0o644))
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		start := time.Now()
		require.Eventually(t, cond, 30*time.Second, 50*time.Millisecond, "%s\n%s", what, blog)
		t.Logf("%-40s seen after %s", what, time.Since(start).Round(10*time.Millisecond))
	}
	read := func(name string) string {
		b, _ := os.ReadFile(filepath.Join(mntB, name))
		return string(b)
	}
	waitFor("a new file", func() bool { return read("shared.txt") == "first" })
	require.NoError(t, os.WriteFile(filepath.Join(c.mnt, "shared.txt"), []byte("second, longer"), 0o644))
	waitFor("a saved file (cached pages)", func() bool { return read("shared.txt") == "second, longer" })
	require.NoError(t, os.Rename(filepath.Join(c.mnt, "shared.txt"), filepath.Join(c.mnt, "moved.txt")))
	waitFor("a rename", func() bool {
		_, err := os.Stat(filepath.Join(mntB, "shared.txt"))
		return errors.Is(err, os.ErrNotExist) && read("moved.txt") == "second, longer"
	})
	require.NoError(t, os.Remove(filepath.Join(c.mnt, "moved.txt")))
	waitFor("a delete (after the unlink grace)", func() bool {
		_, err := os.Stat(filepath.Join(mntB, "moved.txt"))
		return errors.Is(err, os.ErrNotExist)
	})

	for _, m := range []string{mntB, c.mnt} {
		_, stderr, code := c.run("unmount", m)
		require.Zero(t, code, stderr)
	}
	require.NoError(t, b.Wait())
	require.NoError(t, a.Wait())
}

// TestMountAt (issue 16): dmsfs mount --at TIME shows the repository as it
// was: a document's bytes of then, nothing made later, read-only.
func TestMountAt(t *testing.T) {
	c := newCLI(t)
	cmd, _ := c.start()
	require.NoError(t, os.WriteFile(filepath.Join(c.mnt, "plan.txt"), []byte("the old plan"), 0o644))
	between := time.Now().UTC()
	require.NoError(t, os.WriteFile(filepath.Join(c.mnt, "plan.txt"), []byte("the new plan"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(c.mnt, "later.txt"), []byte("later"), 0o644))
	_, stderr, code := c.run("unmount", c.mnt)
	require.Zero(t, code, stderr)
	require.NoError(t, cmd.Wait())

	cmd, log := c.start("--at", between.Format(time.RFC3339Nano))
	got, err := os.ReadFile(filepath.Join(c.mnt, "plan.txt"))
	require.NoError(t, err)
	require.Equal(t, "the old plan", string(got))
	_, err = os.Stat(filepath.Join(c.mnt, "later.txt"))
	require.ErrorIs(t, err, os.ErrNotExist)
	require.ErrorIs(t, os.WriteFile(filepath.Join(c.mnt, "plan.txt"), []byte("x"), 0o644), syscall.EROFS)
	require.Contains(t, log.String(), "showing the repository as it was")
	_, stderr, code = c.run("unmount", c.mnt)
	require.Zero(t, code, stderr)
	require.NoError(t, cmd.Wait())

	_, stderr, code = c.run("mount", "--at", "yesterday", c.mnt)
	require.Equal(t, 2, code)
	require.Contains(t, stderr, "give a time as")
}

// axelorAt runs `dmsfs serve --protocol axelor` on a fixed address and
// data directory, so that a test can stop and start it again.
type axelorAt struct {
	c    *cli
	addr string
	data string
	cmd  *exec.Cmd
}

func newAxelorAt(c *cli) *axelorAt {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(c.t, err)
	addr := ln.Addr().String()
	ln.Close()
	s := &axelorAt{c: c, addr: addr, data: filepath.Join(c.t.TempDir(), "axelor")}
	c.t.Cleanup(s.stop)
	return s
}

func (s *axelorAt) start() {
	s.cmd = s.c.cmd("serve", "--protocol", "axelor", "--data", s.data, "--addr", s.addr)
	require.NoError(s.c.t, s.cmd.Start())
	require.Eventually(s.c.t, func() bool {
		conn, err := net.Dial("tcp", s.addr)
		if err == nil {
			conn.Close()
		}
		return err == nil
	}, 10*time.Second, 20*time.Millisecond)
}

// mountArgs are the flags of a mount of this server with the cli's cache.
func (s *axelorAt) mountArgs(extra ...string) []string {
	args := []string{"--user", "dmsfs", "--password-file", filepath.Join(s.data, "password"), "--cache-dir", s.c.cacheDir}
	return append(append(args, extra...), "axelor+http://"+s.addr)
}

// client is an API client of the server.
func (s *axelorAt) client() *axelor.Client {
	cl, err := axelor.New(context.Background(), axelor.Config{BaseURL: "http://" + s.addr, User: "dmsfs", Password: strings.TrimSpace(readFile(s.c.t, filepath.Join(s.data, "password")))})
	require.NoError(s.c.t, err)
	return cl
}

// docs are the documents of a top folder of the server, by its API.
func (s *axelorAt) docs(folder string) []remote.Node {
	t := s.c.t
	cl := s.client()
	kids, err := cl.List(context.Background(), axelor.RootID)
	require.NoError(t, err)
	for _, k := range kids {
		if k.Name == folder {
			docs, err := cl.List(context.Background(), k.ID)
			require.NoError(t, err)
			return docs
		}
	}
	t.Fatalf("no folder %q on the server", folder)
	return nil
}

// read is a document's content, by the server's API.
func (s *axelorAt) read(n remote.Node) string {
	t := s.c.t
	cl := s.client()
	rc, err := cl.Open(context.Background(), n.ID, n.Files[0].Name, 0, -1)
	require.NoError(t, err)
	defer rc.Close()
	b, err := io.ReadAll(rc)
	require.NoError(t, err)
	return string(b)
}

func (s *axelorAt) stop() {
	if s.cmd != nil {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		_ = s.cmd.Wait()
		s.cmd = nil
	}
}

// TestOffline (issue 16): with the server stopped, a mount works from what
// it knows: ls -lR beyond the listing cache time, cat of files read before,
// 20 new files and 5 changed ones accepted into the spool; status says
// offline; a file never read fails at once. With the server back, every
// change is on it, byte-exact, once.
func TestOffline(t *testing.T) {
	c := newCLI(t)
	srv := newAxelorAt(c)
	srv.start()
	args := srv.mountArgs("--dir-cache-time", "1ms", "--poll-interval", "0")
	cmd, _ := c.mountForeground(args...)
	require.NoError(t, os.MkdirAll(filepath.Join(c.mnt, "docs"), 0o755))
	for i := range 10 {
		require.NoError(t, os.WriteFile(filepath.Join(c.mnt, "docs", fmt.Sprintf("f%d.txt", i)), []byte(fmt.Sprintf("file %d", i)), 0o644))
	}
	// A folder never read from: nothing of it is held (reads fetch the
	// next files of their own folder ahead).
	require.NoError(t, os.MkdirAll(filepath.Join(c.mnt, "cold"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(c.mnt, "cold", "never.txt"), []byte("never read"), 0o644))
	_, _, code := c.run("unmount", c.mnt) // the block cache starts empty
	require.Zero(t, code)
	require.NoError(t, cmd.Wait())
	cmd, log := c.mountForeground(args...)
	for i := range 5 { // read: now held in the block cache
		_, err := os.ReadFile(filepath.Join(c.mnt, "docs", fmt.Sprintf("f%d.txt", i)))
		require.NoError(t, err)
	}

	srv.stop()
	out, err := exec.Command("ls", "-lR", c.mnt).CombinedOutput()
	require.NoError(t, err, "ls -lR offline: %s\n%s", out, log)
	require.Contains(t, string(out), "f9.txt")
	for i := range 5 {
		got, err := os.ReadFile(filepath.Join(c.mnt, "docs", fmt.Sprintf("f%d.txt", i)))
		require.NoError(t, err, "a file read before")
		require.Equal(t, fmt.Sprintf("file %d", i), string(got))
	}
	status, _, _ := c.run("status", c.mnt)
	require.Contains(t, status, "repository:   offline since")
	start := time.Now()
	_, err = os.ReadFile(filepath.Join(c.mnt, "cold", "never.txt"))
	require.Error(t, err, "never read: not held here")
	t.Logf("an uncached read failed after %s", time.Since(start).Round(time.Millisecond))
	for i := range 20 {
		require.NoError(t, os.WriteFile(filepath.Join(c.mnt, "docs", fmt.Sprintf("new%02d.txt", i)), []byte(fmt.Sprintf("new %d", i)), 0o644))
	}
	for i := range 5 {
		require.NoError(t, os.WriteFile(filepath.Join(c.mnt, "docs", fmt.Sprintf("f%d.txt", i+5)), []byte(fmt.Sprintf("changed %d", i+5)), 0o644))
	}
	// Renames and deletes of documents need the server: EIO at once, and
	// nothing changes.
	err = os.Rename(filepath.Join(c.mnt, "docs", "f1.txt"), filepath.Join(c.mnt, "docs", "g1.txt"))
	require.ErrorIs(t, err, syscall.EIO, "a rename offline")
	require.Contains(t, c.ls("docs"), "f1.txt")
	status, _, _ = c.run("status", c.mnt)
	require.Contains(t, status, "25 upload(s) pending")
	require.Regexp(t, `[1-9]\d* read\(s\) of content not held here failed`, status)
	require.NotContains(t, status, "upload /docs", "offline, kept uploads are no errors")

	srv.start()
	require.Eventually(t, func() bool {
		out, _, _ := c.run("status", c.mnt)
		return strings.Contains(out, "repository:   online") && strings.Contains(out, "all uploads done")
	}, time.Minute, 50*time.Millisecond, "the queue drains when the server is back\n%s", log)
	_, stderr, code := c.run("unmount", c.mnt)
	require.Zero(t, code, stderr)
	require.NoError(t, cmd.Wait())

	// On the server: 30 documents, each once, with the right bytes.
	docs := srv.docs("docs")
	want := map[string]string{}
	for i := range 10 {
		want[fmt.Sprintf("f%d.txt", i)] = fmt.Sprintf("file %d", i)
	}
	for i := range 20 {
		want[fmt.Sprintf("new%02d.txt", i)] = fmt.Sprintf("new %d", i)
	}
	for i := 5; i < 10; i++ {
		want[fmt.Sprintf("f%d.txt", i)] = fmt.Sprintf("changed %d", i)
	}
	require.Len(t, docs, len(want), "no duplicates")
	for _, d := range docs {
		require.Equal(t, want[d.Name], srv.read(d), d.Name)
	}
}

func readFile(t *testing.T, p string) string {
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	return string(b)
}

// TestOfflineStartAndKill (issue 16): a mount started while the server is
// down shows the tree an earlier mount kept and takes new files; killed
// with SIGKILL while offline, the next mount (server up) uploads them.
func TestOfflineStartAndKill(t *testing.T) {
	c := newCLI(t)
	srv := newAxelorAt(c)
	srv.start()
	args := srv.mountArgs("--poll-interval", "0")
	cmd, _ := c.mountForeground(args...)
	require.NoError(t, os.MkdirAll(filepath.Join(c.mnt, "docs"), 0o755))
	for _, n := range []string{"a", "b", "c"} {
		require.NoError(t, os.WriteFile(filepath.Join(c.mnt, "docs", n+".txt"), []byte(n), 0o644))
	}
	require.Equal(t, "a.txt\nb.txt\nc.txt\n", c.ls("docs"))
	_, _, code := c.run("unmount", c.mnt)
	require.Zero(t, code)
	require.NoError(t, cmd.Wait())

	srv.stop()
	cmd, log := c.mountForeground(args...)
	require.Contains(t, log.String(), "starting offline from the last known tree")
	require.Equal(t, "a.txt\nb.txt\nc.txt\n", c.ls("docs"), "the kept tree")
	status, _, _ := c.run("status", c.mnt)
	require.Contains(t, status, "offline since")
	require.NoError(t, os.WriteFile(filepath.Join(c.mnt, "docs", "d.txt"), []byte("written offline"), 0o644))
	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()
	_, stderr, code := c.run("unmount", c.mnt) // the dead mount
	require.Zero(t, code, stderr)

	srv.start()
	cmd, log = c.mountForeground(args...)
	require.Contains(t, log.String(), "uploaded from the spool")
	_, stderr, code = c.run("unmount", c.mnt)
	require.Zero(t, code, stderr)
	require.NoError(t, cmd.Wait())
	require.Len(t, srv.docs("docs"), 4, "a, b, c and the one written offline")
}

// ls lists a folder of the mount, one name a line.
func (c *cli) ls(rel string) string {
	out, err := exec.Command("ls", filepath.Join(c.mnt, rel)).CombinedOutput()
	require.NoError(c.t, err, "%s", out)
	return string(out)
}

// TestPinForOffline (issue 16): dmsfs pin keeps a folder's content on
// disk: user.dms.state says pinned, and after a restart with the server
// down the pinned files read while others fail; unpin frees them.
func TestPinForOffline(t *testing.T) {
	c := newCLI(t)
	srv := newAxelorAt(c)
	srv.start()
	args := srv.mountArgs("--poll-interval", "0")
	cmd, _ := c.mountForeground(args...)
	for _, dir := range []string{"kept", "other"} {
		require.NoError(t, os.MkdirAll(filepath.Join(c.mnt, dir), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(c.mnt, dir, "a.txt"), []byte(dir+" content"), 0o644))
	}
	out, stderr, code := c.run("pin", filepath.Join(c.mnt, "kept"))
	require.Zero(t, code, stderr)
	require.Contains(t, out, "1 file(s)")
	state, err := exec.Command("getfattr", "--only-values", "-n", "user.dms.state", filepath.Join(c.mnt, "kept", "a.txt")).Output()
	require.NoError(t, err)
	require.Equal(t, "pinned", string(state))
	_, _, code = c.run("unmount", c.mnt)
	require.Zero(t, code)
	require.NoError(t, cmd.Wait())

	srv.stop()
	cmd, log := c.mountForeground(args...)
	got, err := os.ReadFile(filepath.Join(c.mnt, "kept", "a.txt"))
	require.NoError(t, err, "pinned: readable offline after a restart\n%s", log)
	require.Equal(t, "kept content", string(got))
	_, err = os.ReadFile(filepath.Join(c.mnt, "other", "a.txt"))
	require.Error(t, err, "not pinned, not held")
	out, stderr, code = c.run("unpin", filepath.Join(c.mnt, "kept"))
	require.Zero(t, code, stderr)
	require.Contains(t, out, "1 file(s) freed")
	_, stderr, code = c.run("unmount", c.mnt)
	require.Zero(t, code, stderr)
	require.NoError(t, cmd.Wait())
}
