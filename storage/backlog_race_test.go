//go:build race

package storage

// The race detector slows TestBacklogReopen about fourfold; under it the
// backlog is the one make test-arm gives the 32-bit proof (ARM_BACKLOG),
// which still compacts below level 0 (7 of 8 tables there on amd64).
func init() { backlogDefault = 60_000 }
