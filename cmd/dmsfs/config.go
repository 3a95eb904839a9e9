package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// The config file names remotes, so that `dmsfs mount work: /mnt` needs no
// URL or credentials on the command line:
//
//	# ~/.config/dmsfs/config (chmod 600 when it holds a secret)
//	[work]
//	remote = axelor+https://dms.example.com/axelor
//	user = alice
//	password = …            # or password_file = /path
//	ca_file = /etc/ssl/our-ca.pem
//
// Keys: remote (required), user, password, password_file, api_key,
// api_key_file, token, token_file, ca_file, insecure (true/false).

// remoteName matches a REMOTE that names a config section: "NAME:".
var remoteName = regexp.MustCompile(`^([A-Za-z0-9][A-Za-z0-9_.-]*):$`)

var configKeys = map[string]bool{"remote": true, "user": true, "password": true, "password_file": true,
	"api_key": true, "api_key_file": true, "token": true, "token_file": true, "ca_file": true, "insecure": true}

var secretKeys = []string{"password", "api_key", "token"}

// defaultConfigPath is $XDG_CONFIG_HOME/dmsfs/config.
func defaultConfigPath() string {
	dir := os.Getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home, _ := os.UserHomeDir()
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "dmsfs", "config")
}

// readConfigSection returns section name of the config file at path. A
// file that holds a secret and can be read by others is refused.
func readConfigSection(path, name string) (map[string]string, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: remote %q: config file: %v", errUsage, name+":", err)
	}
	defer fh.Close()
	sections := map[string]map[string]string{}
	var cur map[string]string
	sc := bufio.NewScanner(fh)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[' && line[len(line)-1] == ']':
			cur = map[string]string{}
			sections[strings.TrimSpace(line[1:len(line)-1])] = cur
		default:
			k, v, ok := strings.Cut(line, "=")
			k = strings.TrimSpace(k)
			if !ok || cur == nil || !configKeys[k] {
				return nil, fmt.Errorf("config file %s line %d: expected [name] or one of the keys remote, user, password, password_file, api_key, api_key_file, token, token_file, ca_file, insecure = value", path, n)
			}
			cur[k] = strings.TrimSpace(v)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	for _, s := range sections {
		for _, k := range secretKeys {
			if s[k] == "" {
				continue
			}
			if st, err := fh.Stat(); err == nil && st.Mode().Perm()&0o077 != 0 {
				return nil, fmt.Errorf("config file %s holds a %s and can be read by others; run 'chmod 600 %s'", path, strings.ReplaceAll(k, "_", " "), path)
			}
		}
	}
	s, ok := sections[name]
	if !ok {
		return nil, fmt.Errorf("%w: no remote [%s] in the config file %s", errUsage, name, path)
	}
	if s["remote"] == "" {
		return nil, fmt.Errorf("config file %s: [%s] has no remote = URL", path, name)
	}
	return s, nil
}

// applyConfig fills what the command line left open from a config
// section; flags and the environment take precedence over it.
func applyConfig(s map[string]string, f *mountFlags) error {
	fill := func(dst *string, key string) {
		if *dst == "" {
			*dst = s[key]
		}
	}
	fill(&f.user, "user")
	fill(&f.passwordFile, "password_file")
	fill(&f.apiKeyFile, "api_key_file")
	fill(&f.tokenFile, "token_file")
	fill(&f.caFile, "ca_file")
	f.configSecrets = map[string]string{"DMSFS_PASSWORD": s["password"], "DMSFS_API_KEY": s["api_key"], "DMSFS_TOKEN": s["token"]}
	switch s["insecure"] {
	case "", "false":
	case "true":
		f.insecure = true
	default:
		return fmt.Errorf("config: insecure must be true or false, not %q", s["insecure"])
	}
	return nil
}
