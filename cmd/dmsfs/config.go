package main

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/spf13/pflag"
	"gopkg.in/ini.v1"
)

// The config file names remotes, so that `dmsfs mount work: /mnt` needs no
// URL or credentials on the command line:
//
//	# ~/.config/dmsfs/config (chmod 600 when it holds a secret)
//	[work]
//	remote = axelor+https://dms.example.com/axelor
//	user = alice
//	password = …            # or password_file = /path (a comment after whitespace)
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
// Without $HOME, root's is /etc/dmsfs/config (a mount at boot).
func defaultConfigPath() string {
	return filepath.Join(xdgDir("XDG_CONFIG_HOME", ".config"), "dmsfs", "config")
}

// readConfigSection returns section name of the config file at path. A
// file that holds a secret and can be read by others is refused.
//
// The file is INI as gopkg.in/ini.v1 reads it: "#" and ";" start a comment
// at the start of a line or after whitespace (a password may hold a "#"
// of its own), values may be quoted ("…" or """…"""), keys are case
// sensitive.
func readConfigSection(path, name string) (map[string]string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: remote %q: config file: %v", errUsage, name+":", err)
	}
	cfg, err := ini.LoadSources(ini.LoadOptions{SpaceBeforeInlineComment: true, UnescapeValueDoubleQuotes: true,
		KeyValueDelimiters: "=", AllowNonUniqueSections: false}, raw)
	if err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	keys := strings.Join(slices.Sorted(maps.Keys(configKeys)), ", ")
	for _, sec := range cfg.Sections() {
		if sec.Name() == ini.DefaultSection && len(sec.Keys()) > 0 {
			return nil, fmt.Errorf("config file %s line %d: %q comes before any [name]", path, lineOf(raw, "", sec.Keys()[0].Name()), sec.Keys()[0].Name())
		}
		for _, k := range sec.Keys() {
			if !configKeys[k.Name()] {
				return nil, fmt.Errorf("config file %s line %d: [%s] has an unknown key %q (keys: %s)", path, lineOf(raw, sec.Name(), k.Name()), sec.Name(), k.Name(), keys)
			}
			if slices.Contains(secretKeys, k.Name()) && k.Value() != "" {
				if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
					return nil, fmt.Errorf("config file %s holds a %s and can be read by others; run 'chmod 600 %s'", path, strings.ReplaceAll(k.Name(), "_", " "), path)
				}
			}
		}
	}
	sec, err := cfg.GetSection(name)
	if err != nil || name == ini.DefaultSection {
		return nil, fmt.Errorf("%w: no remote [%s] in the config file %s", errUsage, name, path)
	}
	s := sec.KeysHash()
	for k, v := range s {
		if strings.HasPrefix(v, "# ") || strings.HasPrefix(v, "; ") {
			s[k] = "" // "key = ; comment": ini.v1 takes the comment for the value
		}
	}
	if s["remote"] == "" {
		return nil, fmt.Errorf("config file %s: [%s] has no remote = URL", path, name)
	}
	return s, nil
}

// lineOf is the line of key in section of an INI text (0 if not found),
// for error messages: ini.v1 keeps no line numbers.
func lineOf(raw []byte, section, key string) int {
	in := section == ""
	for i, line := range strings.Split(string(raw), "\n") {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "[") && strings.HasSuffix(t, "]") {
			in = strings.TrimSpace(t[1:len(t)-1]) == section
			continue
		}
		if k, _, ok := strings.Cut(t, "="); in && ok && strings.TrimSpace(k) == key {
			return i + 1
		}
	}
	return 0
}

// showConfig prints a remote's effective settings, secrets masked.
func showConfig(w io.Writer, path, name string) error {
	s, err := readConfigSection(path, name)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "[%s]  # from %s\n", name, path)
	for _, k := range slices.Sorted(maps.Keys(s)) {
		v := s[k]
		if slices.Contains(secretKeys, k) && v != "" {
			v = "******** (set)"
		}
		fmt.Fprintf(w, "%s = %s\n", k, v)
	}
	return nil
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

func cmdConfig(args []string, stdout, stderr io.Writer) error {
	fl := pflag.NewFlagSet("config", pflag.ContinueOnError)
	fl.SetOutput(stderr)
	path := fl.String("config", defaultConfigPath(), "the config file")
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fl.NArg() != 2 || fl.Arg(0) != "show" {
		return fmt.Errorf("%w: config show [--config FILE] NAME", errUsage)
	}
	return showConfig(stdout, *path, strings.TrimSuffix(fl.Arg(1), ":"))
}
