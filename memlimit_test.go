package main

import (
	"path/filepath"
	"testing"
)

func TestMemoryLimit(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		name       string
		gomemlimit string
		root       string // cgroup fixture under resource/testdata
		profile    string
		limit      int64
		source     string
	}{
		{"GOMEMLIMIT wins over a cgroup limit", "100MiB", "cgroup-v2", "small", 0, "GOMEMLIMIT"},
		{"GOMEMLIMIT wins over the profile", "1GiB", "no-memcg", "default", 0, "GOMEMLIMIT"},
		{"cgroup v2: two thirds of the tightest limit", "", "cgroup-v2", "small", 160000000, "cgroup"},
		{"cgroup v1: two thirds of memory.limit_in_bytes", "", "cgroup-v1", "default", 512 * mib * 2 / 3, "cgroup"},
		{"container: its namespace root's memory.max", "", "cgroup-v2-container", "small", 512 * mib * 2 / 3, "cgroup"},
		{"no memory cgroup: the small profile", "", "no-memcg", "small", 64 * mib, "storage.memory"},
		{"no memory cgroup: the default profile", "", "no-memcg", "default", 256 * mib, "storage.memory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			limit, source := memoryLimit(tc.gomemlimit, filepath.Join("resource", "testdata", tc.root), tc.profile)
			if limit != tc.limit || source != tc.source {
				t.Errorf("memoryLimit = %d, %q; want %d, %q", limit, source, tc.limit, tc.source)
			}
		})
	}
}
