package storage

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkLogSync is what one group commit's fsync costs the way Badger
// makes its WAL durable, against a plain file: append 64 job-sized records
// (19 KB) to a 16 MiB log, then make them durable. "mapped" writes through
// a shared mapping and msyncs it (Badger's memtable WAL, z.MmapFile);
// "pwrite" writes with pwrite into a preallocated file and fdatasyncs it.
// It reports the CPU time the process spent per sync (user and system, the
// kernel's writeback included), the cost that competes with the producers
// for the cores, besides the wall time per op.
//
//	go test -run '^$' -bench LogSync -benchtime 2000x -count 3 ./storage/
func BenchmarkLogSync(b *testing.B) {
	const size, record = 16 << 20, 64 * 300
	for _, mode := range []string{"mapped", "pwrite"} {
		b.Run(mode, func(b *testing.B) {
			f, err := os.OpenFile(filepath.Join(b.TempDir(), "log"), os.O_RDWR|os.O_CREATE, 0o644)
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			if _, err := f.Write(make([]byte, size)); err != nil {
				b.Fatal(err)
			}
			if err := f.Sync(); err != nil {
				b.Fatal(err)
			}
			m, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
			if err != nil {
				b.Fatal(err)
			}
			defer unix.Munmap(m)
			rec := make([]byte, record)
			for i := range rec {
				rec[i] = byte(i)
			}
			var before, after syscall.Rusage
			_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
			off := 0
			b.ResetTimer()
			for b.Loop() {
				if off+record > size {
					off = 0
				}
				switch mode {
				case "mapped":
					copy(m[off:], rec)
					err = unix.Msync(m, unix.MS_SYNC)
				case "pwrite":
					if _, err = f.WriteAt(rec, int64(off)); err == nil {
						err = unix.Fdatasync(int(f.Fd()))
					}
				}
				if err != nil {
					b.Fatal(err)
				}
				off += record
			}
			b.StopTimer()
			_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
			cpu := time.Duration(after.Utime.Nano()-before.Utime.Nano()) + time.Duration(after.Stime.Nano()-before.Stime.Nano())
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-us/sync")
		})
	}
}
