package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"

	"github.com/dmsfs/dmsfs/remote"
)

// cmdPublish publishes the draft of the record that PATH is in: it shows
// what will be published, asks (unless --yes), and publishes.
func cmdPublish(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fl := pflag.NewFlagSet("publish", pflag.ContinueOnError)
	fl.SetOutput(stderr)
	yes := fl.BoolP("yes", "y", false, "publish without asking")
	dry := fl.BoolP("dry-run", "n", false, "only show what would be published")
	fl.Usage = func() {
		fmt.Fprintf(stderr, "Usage: dmsfs publish [--yes|--dry-run] PATH\n\nPublishes the draft of the record that PATH (inside a dmsfs mount of an Invenio\nrepository) is in, after uploading what is pending and showing what changes.\nPublishing is irreversible: the repository makes it a new version (and may mint a DOI).\n\nFlags:\n%s", fl.FlagUsages())
	}
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fl.NArg() != 1 {
		return fmt.Errorf("%w: publish takes one PATH inside a mount", errUsage)
	}
	path, err := filepath.Abs(fl.Arg(0))
	if err != nil {
		return err
	}
	mnt, rel, err := findMount(path)
	if err != nil {
		return err
	}
	plan, err := publishCall(mnt, rel, true)
	if err != nil {
		return err
	}
	if plan.NoDraft {
		fmt.Fprintf(stdout, "%q has no draft: nothing to publish (version %d is the latest).\n", plan.Title, plan.Version)
		return nil
	}
	fmt.Fprintf(stdout, "Record %q (draft %s) will be published as version %d:\n", plan.Title, plan.Record, plan.Version)
	for _, l := range []struct {
		mark  string
		names []string
	}{{"+", plan.Added}, {"M", plan.Changed}, {"-", plan.Removed}} {
		for _, n := range l.names {
			fmt.Fprintf(stdout, "  %s %s\n", l.mark, n)
		}
	}
	fmt.Fprintf(stdout, "  (%d files unchanged)\n", len(plan.Unchanged))
	if *dry {
		return nil
	}
	if !*yes {
		fmt.Fprint(stdout, "Publishing cannot be undone. Publish? [y/N] ")
		answer, _ := bufio.NewReader(stdin).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
			fmt.Fprintln(stdout, "\nNot published.")
			return nil
		}
	}
	done, err := publishCall(mnt, rel, false)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Published %q as version %d.\n", done.Title, done.Version)
	return nil
}

// findMount walks up from path to the mount point whose control socket
// answers, and returns it with path relative to it.
func findMount(path string) (mnt, rel string, err error) {
	for dir := path; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(socketPath(dir)); err == nil {
			rel, err := filepath.Rel(dir, path)
			if err != nil {
				return "", "", err
			}
			if rel == "." {
				rel = ""
			}
			return dir, rel, nil
		}
		if dir == filepath.Dir(dir) {
			return "", "", fmt.Errorf("%s is not inside a running dmsfs mount", path)
		}
	}
}

func publishCall(mnt, rel string, dry bool) (remote.PublishPlan, error) {
	q := url.Values{"path": {rel}}
	if dry {
		q.Set("dry", "1")
	}
	var plan remote.PublishPlan
	err := controlPost(mnt, "publish", q, &plan)
	return plan, err
}

// controlPost asks the mount's control socket to do what with q and
// decodes its JSON answer into out; a refusal comes back as its error.
func controlPost(mnt, what string, q url.Values, out any) error {
	resp, err := controlClient(mnt).Post("http://dmsfs/"+what+"?"+q.Encode(), "", nil)
	if err != nil {
		return fmt.Errorf("no dmsfs mount answers at %s", mnt)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		_ = json.NewDecoder(resp.Body).Decode(&e)
		if e.Error == "" {
			e.Error = resp.Status
		}
		return errors.New(e.Error)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("answer of the mount at %s: %w", mnt, err)
	}
	return nil
}
