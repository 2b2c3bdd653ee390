// edgeq: see README.edgeq.md, "Resident pages and compaction builders".

//go:build !linux

package table

func dropResident([]byte) {}
