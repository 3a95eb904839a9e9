package core_test

import (
	"fmt"
	"testing"

	"github.com/dmsfs/dmsfs/fs/core"
	"github.com/dmsfs/dmsfs/fs/core/reftest"
)

// TestReferenceModel runs the reference-model test (package reftest) on
// the FUSE-free core over the embedded repository: 10 seeds of 2,000 steps
// (fewer under the race detector, which .ci/run runs without it too).
func TestReferenceModel(t *testing.T) {
	def := 2000
	if raceEnabled {
		def = 300
	}
	seeds, ops := reftest.Seeds(10, def)
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Parallel()
			repo := embeddedRepo(t)
			reftest.Run(t, reftest.Config{Repo: repo, Target: reftest.CoreTarget(t, repo, core.Options{}),
				Seed: seed, Ops: ops, DocID: reftest.DocID})
		})
	}
}

// TestReferenceModelWithLostAnswers is TestReferenceModel with a tenth of
// the saves of existing documents losing their answer after the change
// was made: the writer may be told, and the run must still end with
// exactly the model's documents, one version per save, and no conflict
// copy but the outside writer's.
func TestReferenceModelWithLostAnswers(t *testing.T) {
	def := 1000
	if raceEnabled {
		def = 200
	}
	seeds, ops := reftest.Seeds(4, def)
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Parallel()
			repo := embeddedRepo(t)
			lossy := reftest.NewLossy(repo, seed, 0.1)
			reftest.Run(t, reftest.Config{Repo: repo, Lossy: lossy, Target: reftest.CoreTarget(t, lossy, core.Options{}),
				Seed: seed, Ops: ops, DocID: reftest.DocID})
		})
	}
}
