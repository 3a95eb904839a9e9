package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/dmsfs/dmsfs/remote"
	"github.com/dmsfs/dmsfs/remote/axelor"
	"github.com/dmsfs/dmsfs/remote/enaio"
	"github.com/dmsfs/dmsfs/remote/invenio"
)

// axelorRemote parses axelor+http(s)://[USER@]HOST[:PORT][/PATH]. The
// credentials come from files or the environment, never from the URL.
func axelorRemote(spec string, f *mountFlags) (string, func(*slog.Logger) (remote.Repository, func(), error), error) {
	u, err := url.Parse(strings.TrimPrefix(spec, "axelor+"))
	if err != nil || u.Host == "" {
		return "", nil, fmt.Errorf("%w: %q is not axelor+http(s)://[USER@]HOST[:PORT][/PATH]", errUsage, spec)
	}
	if _, hasPassword := u.User.Password(); hasPassword {
		return "", nil, fmt.Errorf("%w: put no password in the URL (it would show in the process list); use DMSFS_PASSWORD or --password-file", errUsage)
	}
	user := f.user
	if user == "" && u.User != nil {
		user = u.User.Username()
	}
	u.User = nil
	base := u.String()
	apiKey, err := secret(f.apiKeyFile, "DMSFS_API_KEY", "API key", f.configSecrets)
	if err != nil {
		return "", nil, err
	}
	password := ""
	if apiKey == "" {
		if user == "" {
			return "", nil, fmt.Errorf("%w: give the Axelor user with --user or as USER@ in the URL, or an API key", errUsage)
		}
		if password, err = secret(f.passwordFile, "DMSFS_PASSWORD", "password", f.configSecrets); err != nil {
			return "", nil, err
		}
		if password == "" {
			return "", nil, fmt.Errorf("%w: no password: set DMSFS_PASSWORD or use --password-file (or an API key with --api-key-file)", errUsage)
		}
	}
	tr, err := httpTLS(u, f)
	if err != nil {
		return "", nil, err
	}
	label := "axelor:" + user + "@" + base
	return label, func(log *slog.Logger) (remote.Repository, func(), error) {
		var hc *http.Client
		if tr != nil {
			hc = &http.Client{Transport: tr}
		}
		if f.insecure {
			log.Warn(insecureWarning)
		}
		c, err := axelor.New(context.Background(), axelor.Config{BaseURL: base, User: user, Password: password,
			APIKey: apiKey, Logger: log, HTTPClient: hc, Timeout: f.timeout})
		if err != nil {
			return nil, nil, err
		}
		return c, func() {}, nil
	}, nil
}

// invenioRemote parses invenio+http(s)://HOST[:PORT][/PATH]; the token
// comes from --token-file or DMSFS_TOKEN.
func invenioRemote(spec string, f *mountFlags) (string, func(*slog.Logger) (remote.Repository, func(), error), error) {
	u, err := url.Parse(strings.TrimPrefix(spec, "invenio+"))
	if err != nil || u.Host == "" {
		return "", nil, fmt.Errorf("%w: %q is not invenio+http(s)://HOST[:PORT][/PATH]", errUsage, spec)
	}
	if u.User != nil {
		return "", nil, fmt.Errorf("%w: Invenio takes a token, not a user: put nothing before @ and use DMSFS_TOKEN or --token-file", errUsage)
	}
	token, err := secret(f.tokenFile, "DMSFS_TOKEN", "token", f.configSecrets)
	if err != nil {
		return "", nil, err
	}
	if token == "" {
		return "", nil, fmt.Errorf("%w: no token: set DMSFS_TOKEN or use --token-file (create one in the repository under Applications → Personal access tokens)", errUsage)
	}
	base := u.String()
	tr, err := httpTLS(u, f)
	if err != nil {
		return "", nil, err
	}
	return "invenio:" + base, func(log *slog.Logger) (remote.Repository, func(), error) {
		cfg := invenio.Config{BaseURL: base, Token: token, Logger: log, CacheDir: f.cacheDir, Timeout: f.timeout}
		if tr != nil {
			cfg.Transport = tr
		}
		if f.insecure {
			log.Warn(insecureWarning)
		}
		r, err := invenio.New(context.Background(), cfg)
		if err != nil {
			return nil, nil, err
		}
		return r, func() { _ = r.Close() }, nil
	}, nil
}

// enaioRemote parses enaio://[USER@]HOST[:PORT][/CABINET/FOLDER…] (enaios://
// for TLS; port 4000 by default); the password comes from --password-file or
// DMSFS_PASSWORD.
func enaioRemote(spec string, f *mountFlags) (string, func(*slog.Logger) (remote.Repository, func(), error), error) {
	u, err := url.Parse(spec)
	if err != nil || u.Host == "" {
		return "", nil, fmt.Errorf("%w: %q is not enaio(s)://[USER@]HOST[:PORT][/CABINET/FOLDER…]", errUsage, spec)
	}
	if _, hasPassword := u.User.Password(); hasPassword {
		return "", nil, fmt.Errorf("%w: put no password in the URL (it would show in the process list); use DMSFS_PASSWORD or --password-file", errUsage)
	}
	user := f.user
	if user == "" && u.User != nil {
		user = u.User.Username()
	}
	if user == "" {
		return "", nil, fmt.Errorf("%w: give the enaio user with --user or as USER@ in the URL", errUsage)
	}
	password, err := secret(f.passwordFile, "DMSFS_PASSWORD", "password", f.configSecrets)
	if err != nil {
		return "", nil, err
	}
	if password == "" {
		return "", nil, fmt.Errorf("%w: no password: set DMSFS_PASSWORD or use --password-file", errUsage)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "4000")
	}
	tls := u.Scheme == "enaios"
	if !tls && (f.caFile != "" || f.insecure) {
		return "", nil, fmt.Errorf("%w: --ca-file and --insecure are for https:// and enaios:// remotes", errUsage)
	}
	label := u.Scheme + "://" + user + "@" + addr + u.Path
	return label, func(log *slog.Logger) (remote.Repository, func(), error) {
		if f.insecure {
			log.Warn(insecureWarning)
		}
		r, err := enaio.New(context.Background(), enaio.Config{Addr: addr, TLS: tls, CAFile: f.caFile, Insecure: f.insecure, Timeout: f.timeout,
			User: user, Password: password, Root: u.Path, CacheDir: f.cacheDir, Logger: log})
		if err != nil {
			return nil, nil, err
		}
		return r, func() { _ = r.Close() }, nil
	}, nil
}

// httpTLS is the TLS setup for an http(s) remote from --ca-file and
// --insecure; nil means Go's default (system roots, host name checked).
func httpTLS(u *url.URL, f *mountFlags) (*http.Transport, error) {
	if f.caFile == "" && !f.insecure {
		return nil, nil
	}
	if u.Scheme != "https" {
		return nil, fmt.Errorf("%w: --ca-file and --insecure are for https:// and enaios:// remotes", errUsage)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 32
	tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: f.insecure}
	if f.caFile != "" && !f.insecure {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		b, err := os.ReadFile(f.caFile)
		if err != nil {
			return nil, fmt.Errorf("CA file: %w", err)
		}
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("CA file %s holds no PEM certificate", f.caFile)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	return tr, nil
}

const insecureWarning = "--insecure: the server's certificate is not checked; anyone on the network path can read and change what is sent, credentials included"

// secret reads a credential from file (refused when others may read it),
// else from the environment variable env, else from the config file.
func secret(file, env, what string, fromConfig map[string]string) (string, error) {
	if file == "" {
		if v := os.Getenv(env); v != "" {
			return v, nil
		}
		return fromConfig[env], nil
	}
	st, err := os.Stat(file)
	if err != nil {
		return "", fmt.Errorf("%s file: %w", what, err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("%s file %s can be read by others; run 'chmod 600 %s'", what, file, file)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("%s file: %w", what, err)
	}
	return strings.TrimSpace(string(b)), nil
}
