package storetest_test

import (
	"testing"

	"github.com/edgeq/edgeq/engine/memstore"
	"github.com/edgeq/edgeq/engine/store"
	"github.com/edgeq/edgeq/engine/storetest"
)

// TestMemstore runs the suite against the engine's in-memory test store:
// it keeps the suite honest about depending on no particular store.
func TestMemstore(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		Open: func(t *testing.T) store.Store { return memstore.New() },
	})
}
