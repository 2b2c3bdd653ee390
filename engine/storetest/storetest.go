package storetest

import (
	"testing"

	"github.com/edgeq/edgeq/engine/store"
)

// Harness opens the store under test.
type Harness struct {
	// Open returns a new, empty store and arranges (t.Cleanup) to close it.
	Open func(t *testing.T) store.Store
	// Reopen closes s and opens the same data again, as a restart would, and
	// arranges to close the new store. Nil for a store without durable
	// backing (in memory): the durability subtests are then skipped.
	Reopen func(t *testing.T, s store.Store) store.Store
}

// Run runs every conformance subtest against h.
func Run(t *testing.T, h Harness) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(*testing.T, Harness)
	}{
		{"CreateRead", testCreateRead},
		{"NotFound", testNotFound},
		{"Transitions", testTransitions},
		{"DeleteFromEachState", testDelete},
		{"SizeOnRead", testSizeOnRead},
		{"UpdateKeepsPayload", testUpdateKeepsPayload},
		{"UpdateCarriesPayload", testUpdateCarriesPayload},
		{"DeleteBySize", testDeleteBySize},
		{"ExpiryIndex", testExpiryIndex},
		{"FIFOAcrossPrefixQueues", testFIFOPrefixQueues},
		{"ReadyAfter", testReadyAfter},
		{"Due", testDue},
		{"DeadPagination", testDeadPagination},
		{"LeasedPagination", testLeasedPagination},
		{"Dedupe", testDedupe},
		{"Seq", testSeq},
		{"Schedules", testSchedules},
		{"ReadYourWrites", testReadYourWrites},
		{"Discard", testDiscard},
		{"Fits", testFits},
		{"FitsEvict", testFitsEvict},
		{"Reopen", testReopen},
		{"LeaseReadBack", testLeaseReadBack},
		{"LeaseExtend", testLeaseExtend},
		{"LeaseThenNack", testLeaseThenNack},
		{"LeaseThenDelete", testLeaseThenDelete},
		{"LeaseReopen", testLeaseReopen},
		{"RetainedDone", testRetainedDone},
		{"ReplaceInOneTxn", testReplace},
		{"GroupReady", testGroupReady},
		{"GroupLeaseRetry", testGroupLeaseRetry},
		{"GroupReopen", testGroupReopen},
		{"OrderedRetryWaiting", testOrderedRetryWaiting},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, h) })
	}
}
