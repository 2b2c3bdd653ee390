//go:build race

package storage

// The race detector slows TestBacklogReopen about fourfold; half the
// backlog still compacts below level 0.
func init() { backlogDefault = 100_000 }
