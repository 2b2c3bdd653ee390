package storage

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// When badger.Open fails after it built its DB (TestCorruption: a
		// table with a damaged index), its cleanup stops neither the
		// allocator pool nor the cache monitor it started: these two
		// goroutines outlive the failed Open in Badger v4.9.6. A DB that
		// opened and closed leaves neither (TestClose checks that).
		goleak.IgnoreTopFunction("github.com/dgraph-io/ristretto/v2/z.(*AllocatorPool).freeupAllocators"),
		goleak.IgnoreTopFunction("github.com/dgraph-io/badger/v4.(*DB).monitorCache"),
		// When it fails later, replaying a damaged memtable log
		// (TestCorruption, garbage in a .mem file, refused), the size
		// updater and the two transaction watermarks it started are left
		// running too.
		goleak.IgnoreTopFunction("github.com/dgraph-io/badger/v4.(*DB).updateSize"),
		goleak.IgnoreTopFunction("github.com/dgraph-io/badger/v4/y.(*WaterMark).process"),
	)
}
