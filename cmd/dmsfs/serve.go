package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/dmsfs/dmsfs/remote/axelor/axelortest"
	"github.com/dmsfs/dmsfs/remote/enaio/enaiotest"
	"github.com/dmsfs/dmsfs/remote/invenio/inveniotest"
)

func cmdServe(args []string, stdout, stderr io.Writer) error {
	fl := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	fl.SetOutput(stderr)
	protocol := fl.String("protocol", "", "the protocol to speak: axelor, invenio or enaio")
	data := fl.String("data", "", "where the served repository keeps its data (default $XDG_DATA_HOME/dmsfs/serve-<protocol>)")
	addr := fl.String("addr", "127.0.0.1:8090", "address to listen on (port 0 picks a free one)")
	user := fl.String("user", "dmsfs", "the user name the server accepts")
	s3 := fl.Bool("s3", false, "invenio: serve downloads as 302 redirects to a separate storage endpoint with signed URLs, like invenio-s3")
	ranges := fl.Bool("range", false, "invenio: honour Range on direct downloads (FILES_REST_ALLOW_RANGE_REQUESTS; off by default, as in InvenioRDM)")
	maxFiles := fl.Int("max-files", 100, "invenio: files per record (RDM_RECORDS_MAX_FILES_COUNT)")
	blocklist := fl.String("upload-blocklist", "", "axelor: refuse uploads of file names matching this regular expression, as data.upload.blocklist.pattern does")
	useTLS := fl.Bool("tls", false, "enaio: serve TLS with a self-signed certificate for \"AppServer\" (written to DIR/ca.pem), as enaio installations do")
	fl.Usage = func() {
		fmt.Fprintf(stderr, "Usage: dmsfs serve --protocol axelor|invenio|enaio [--data DIR] [--addr 127.0.0.1:PORT]\n\nRuns a protocol-faithful test server for trying dmsfs, for tests and benchmarks.\nAxelor and enaio: the password is taken from DMSFS_PASSWORD, or made up and written to DIR/password.\nInvenio: the token is taken from DMSFS_TOKEN, or made up and written to DIR/token.\n\nFlags:\n%s", fl.FlagUsages())
	}
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fl.NArg() != 0 {
		return fmt.Errorf("%w: serve takes no arguments besides flags", errUsage)
	}
	switch *protocol {
	case "axelor", "invenio", "enaio":
	case "":
		return fmt.Errorf("%w: serve needs --protocol axelor, invenio or enaio", errUsage)
	default:
		return fmt.Errorf("%w: unknown protocol %q (axelor, invenio, enaio)", errUsage, *protocol)
	}
	if *data == "" {
		*data = filepath.Join(xdgDir("XDG_DATA_HOME", ".local/share"), "dmsfs", "serve-"+*protocol)
	}
	if err := os.MkdirAll(*data, 0o700); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *addr, err)
	}
	if *protocol == "enaio" {
		return serveEnaio(*data, ln, *user, *useTLS, stdout)
	}
	var handler http.Handler
	cleanup := func(context.Context) {}
	if *protocol == "invenio" {
		h, c, err := serveInvenio(*data, ln, *user, inveniotest.Options{S3: *s3, Range: *ranges, MaxFiles: *maxFiles}, stdout)
		if err != nil {
			return err
		}
		handler, cleanup = h, c
	} else {
		var block *regexp.Regexp
		if *blocklist != "" {
			if block, err = regexp.Compile(*blocklist); err != nil {
				return fmt.Errorf("%w: --upload-blocklist: %v", errUsage, err)
			}
		}
		h, err := serveAxelor(*data, ln, *user, block, stdout)
		if err != nil {
			return err
		}
		handler = h
	}
	hs := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = hs.Shutdown(sctx)
	cleanup(sctx)
	return err
}

func serveAxelor(data string, ln net.Listener, user string, block *regexp.Regexp, stdout io.Writer) (http.Handler, error) {
	password, pwFile, err := servePassword(data)
	if err != nil {
		return nil, err
	}
	apiKey, keyFile, err := secretFile(filepath.Join(data, "api-key"))
	if err != nil {
		return nil, err
	}
	srv, err := axelortest.New(data, axelortest.Options{Users: map[string]string{user: password},
		APIKeys: map[string]string{apiKey: user}, BlockPattern: block})
	if err != nil {
		return nil, err
	}
	url := "axelor+http://" + ln.Addr().String()
	fmt.Fprintf(stdout, "Axelor test server at http://%s (data in %s)\n", ln.Addr(), data)
	if pwFile != "" {
		fmt.Fprintf(stdout, "user %q; password in %s, API key in %s\n", user, pwFile, keyFile)
		fmt.Fprintf(stdout, "mount it with:\n  dmsfs mount --user %s --password-file %s %s MOUNTPOINT\n", user, pwFile, url)
	} else {
		fmt.Fprintf(stdout, "user %q with the password from DMSFS_PASSWORD; API key in %s\n", user, keyFile)
		fmt.Fprintf(stdout, "mount it with:\n  dmsfs mount --user %s %s MOUNTPOINT\n", user, url)
	}
	fmt.Fprintf(stdout, "URL: %s\n", url)
	return srv.Handler(), nil
}

// serveInvenio starts the Invenio test server's storage endpoint on its own
// port (a different origin, as S3 is) and returns the API handler.
func serveInvenio(data string, ln net.Listener, user string, opts inveniotest.Options, stdout io.Writer) (http.Handler, func(context.Context), error) {
	token, tokenFile := os.Getenv("DMSFS_TOKEN"), ""
	if token == "" {
		var err error
		if token, tokenFile, err = secretFile(filepath.Join(data, "token")); err != nil {
			return nil, nil, err
		}
	}
	opts.Tokens = map[string]string{token: user}
	srv, err := inveniotest.New(data, opts)
	if err != nil {
		return nil, nil, err
	}
	host, _, _ := net.SplitHostPort(ln.Addr().String())
	sln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return nil, nil, fmt.Errorf("listen for the storage endpoint: %w", err)
	}
	srv.SetStorageURL("http://" + sln.Addr().String())
	storage := &http.Server{Handler: srv.StorageHandler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = storage.Serve(sln) }()
	url := "invenio+http://" + ln.Addr().String()
	fmt.Fprintf(stdout, "Invenio test server at http://%s, storage at http://%s (data in %s)\n", ln.Addr(), sln.Addr(), data)
	if tokenFile != "" {
		fmt.Fprintf(stdout, "user %q; token in %s\n", user, tokenFile)
		fmt.Fprintf(stdout, "mount it with:\n  dmsfs mount --token-file %s %s MOUNTPOINT\n", tokenFile, url)
	} else {
		fmt.Fprintf(stdout, "user %q with the token from DMSFS_TOKEN\n", user)
		fmt.Fprintf(stdout, "mount it with:\n  dmsfs mount %s MOUNTPOINT\n", url)
	}
	fmt.Fprintf(stdout, "URL: %s\n", url)
	return srv.Handler(), func(ctx context.Context) {
		_ = storage.Shutdown(ctx)
		_ = srv.Close() // saves what is not saved yet
	}, nil
}

// serveEnaio runs the enaio test server (TCP, not HTTP) until a signal.
func serveEnaio(data string, ln net.Listener, user string, useTLS bool, stdout io.Writer) error {
	password, pwFile, err := servePassword(data)
	if err != nil {
		return err
	}
	srv, err := enaiotest.New(data, ln, enaiotest.Options{Users: map[string]string{user: password}, TLS: useTLS})
	if err != nil {
		return err
	}
	scheme, caFlag := "enaio", ""
	if useTLS {
		ca := filepath.Join(data, "ca.pem")
		if err := os.WriteFile(ca, srv.CertPEM(), 0o644); err != nil {
			_ = srv.Close()
			return err
		}
		scheme, caFlag = "enaios", " --ca-file "+ca
	}
	url := scheme + "://" + ln.Addr().String()
	fmt.Fprintf(stdout, "enaio test server at %s (data in %s)\n", ln.Addr(), data)
	pwFlag := ""
	if pwFile != "" {
		fmt.Fprintf(stdout, "user %q; password in %s\n", user, pwFile)
		pwFlag = " --password-file " + pwFile
	} else {
		fmt.Fprintf(stdout, "user %q with the password from DMSFS_PASSWORD\n", user)
	}
	fmt.Fprintf(stdout, "mount it with:\n  dmsfs mount --user %s%s%s %s MOUNTPOINT\n", user, pwFlag, caFlag, url)
	fmt.Fprintf(stdout, "URL: %s\n", url)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	return srv.Close()
}

// servePassword is DMSFS_PASSWORD, or the content of DIR/password (made up
// on first use); file is where it is, if it is in a file.
func servePassword(dir string) (password, file string, err error) {
	if p := os.Getenv("DMSFS_PASSWORD"); p != "" {
		return p, "", nil
	}
	return secretFile(filepath.Join(dir, "password"))
}

// secretFile reads a secret from path, creating a random one (mode 0600)
// if the file does not exist.
func secretFile(path string) (string, string, error) {
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), path, nil
	}
	b := make([]byte, 12)
	rand.Read(b)
	secret := hex.EncodeToString(b)
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		return "", "", err
	}
	return secret, path, nil
}
