//go:build edgeq_torture

package storage

// Built only with -tags edgeq_torture, for the power-cut torture test
// (e2e/torture_test.go): tiny memtables, tables and value-log files and a
// maintenance loop in a hurry, so that a few seconds of load rotate the WAL
// and the value log, flush and compact tables, reclaim and run the
// value-log GC, each of which the test cuts the power right after. The
// edgeq binary is built without the tag; e2e's deps test checks that.
func init() {
	p := profiles[ProfileSmall]
	p.memTableSize = 256 << 10
	p.baseLevelSize = 1 << 20
	p.numL0Tables = 2
	p.numL0TablesStall = 6
	p.valueLogFileSize = 1 << 20 // Badger's minimum
	profiles[ProfileSmall] = p
	valueLogGCTicks = 2
	reclaimTicks = 2
	reclaimMinGarbage = 128 << 10
}
