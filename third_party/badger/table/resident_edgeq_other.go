// edgeq: see README.edgeq.md, "Resident pages and compaction builders".

//go:build !linux

package table

import "github.com/dgraph-io/ristretto/v2/z"

func dropResident(*z.MmapFile) {}
