package main

import (
	"strings"
	"testing"
)

// A trace as strace -f -y -s 0 writes it: the WAL and value log mapped at
// Open, then two group commits (one msync split by another thread's call),
// a checkpoint and a socket write that does not count.
const traceFixture = `100   mmap(NULL, 8388608, PROT_READ|PROT_WRITE, MAP_SHARED, 7</card/edgeq/00001.mem>, 0) = 0x7f0000000000
100   mmap(NULL, 67108864, PROT_READ|PROT_WRITE, MAP_SHARED, 8</card/edgeq/000001.vlog>, 0 <unfinished ...>
101   write(3</var/log/edgeq.log>, ""..., 80) = 80
100   <... mmap resumed>) = 0x7f1000000000
102   msync(0x7f0000000000, 8388608, MS_SYNC <unfinished ...>
103   write(12<TCP:[127.0.0.1:7070->127.0.0.1:5000]>, ""..., 120) = 120
102   <... msync resumed>) = 0
102   msync(0x7f1000000000, 67108864, MS_SYNC) = 0
102   msync(0x7f0000000000, 8388608, MS_SYNC) = 0
102   msync(0x7f1000000000, 67108864, MS_SYNC) = 0
104   write(9</card/edgeq/edgeq.checkpoint.tmp>, ""..., 29) = 29
104   fsync(9</card/edgeq/edgeq.checkpoint.tmp>) = 0
104   renameat(AT_FDCWD, "/card/edgeq/edgeq.checkpoint.tmp", AT_FDCWD, "/card/edgeq/edgeq.checkpoint") = 0
104   fsync(10</card/edgeq>) = 0
105   pwrite64(11</card/edgeq/MANIFEST>, ""..., 28, 4096) = 28
`

func TestParseTrace(t *testing.T) {
	st, err := parseTrace(strings.NewReader(traceFixture), 3, "/card/")
	if err != nil {
		t.Fatal(err)
	}
	if st.commits != 2 {
		t.Errorf("commits = %d, want 2", st.commits)
	}
	want := map[string]fileCalls{
		"WAL (.mem)":        {syncs: 2},
		"value log (.vlog)": {syncs: 2},
		"checkpoint":        {syncs: 1, writes: 1, bytes: 29, other: 1},
		"directory":         {syncs: 1},
		"MANIFEST":          {writes: 1, bytes: 28},
	}
	for k, w := range want {
		if got := st.files[k]; got == nil || *got != w {
			t.Errorf("%s: got %+v, want %+v", k, got, w)
		}
	}
	if len(st.files) != len(want) {
		t.Errorf("files counted: %v, want only the card's %d kinds", st.files, len(want))
	}
}
