package core_test

import (
	"fmt"
	"testing"

	"github.com/dmsfs/dmsfs/fs/core"
	"github.com/dmsfs/dmsfs/fs/core/reftest"
	"github.com/dmsfs/dmsfs/remote"
)

// TestReferenceModel runs the reference-model test (package reftest) on
// the FUSE-free core over the embedded repository: 10 seeds of 2,000 steps
// (fewer under the race detector, which .ci/run runs without it too).
func TestReferenceModel(t *testing.T) {
	runReferenceModel(t, 10, 2000, 300, 0)
}

// TestReferenceModelWithLostAnswers is TestReferenceModel with a tenth of
// the saves and creates losing their answer after the change was made: the writer may be told, and the run must still end with
// exactly the model's documents, one version per save, and no conflict
// copy but the outside writer's.
func TestReferenceModelWithLostAnswers(t *testing.T) {
	runReferenceModel(t, 4, 1000, 200, 0.1)
}

// runReferenceModel runs seeds seeds of ops steps (raceOps under the race
// detector), each on a repository of its own; lose is the share of saves
// whose answer is lost (reftest.Lossy), 0 for none.
func runReferenceModel(t *testing.T, seeds, ops, raceOps int, lose float64) {
	if raceEnabled {
		ops = raceOps
	}
	list, ops := reftest.Seeds(seeds, ops)
	for _, seed := range list {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Parallel()
			repo := embeddedRepo(t)
			cfg := reftest.Config{Repo: repo, Seed: seed, Ops: ops, DocID: reftest.DocID}
			var target remote.Repository = repo
			if lose > 0 {
				cfg.Lossy = reftest.NewLossy(repo, seed, lose)
				target = cfg.Lossy
			}
			cfg.Target = reftest.CoreTarget(t, target, core.Options{})
			reftest.Run(t, cfg)
		})
	}
}
