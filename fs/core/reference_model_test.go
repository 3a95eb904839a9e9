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
