package table

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4/fb"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/dgraph-io/badger/v4/pb"
	"github.com/dgraph-io/badger/v4/y"
	"github.com/dgraph-io/ristretto/v2"
)

// encryptedTable writes an encrypted table of n keys with 100-byte values
// into dir (about 130 bytes an entry, uncompressed) and opens it with a block
// cache and an index cache, as Badger opens an encrypted store's tables.
// modify, when not nil, changes the options first.
func encryptedTable(t *testing.T, dir string, n int, modify func(*Options)) *Table {
	t.Helper()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	bc, err := ristretto.NewCache(&ristretto.Config[[]byte, *Block]{
		NumCounters: 1 << 12, MaxCost: 4 << 20, BufferItems: 64, OnExit: BlockEvictHandler,
	})
	if err != nil {
		t.Fatal(err)
	}
	ic, err := ristretto.NewCache(&ristretto.Config[uint64, *fb.TableIndex]{
		NumCounters: 80, MaxCost: 2 << 20, BufferItems: 64,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bc.Close(); ic.Close() })
	opts := Options{
		BlockSize:          4 << 10,
		BloomFalsePositive: 0.01,
		Compression:        options.None,
		ChkMode:            options.OnBlockRead,
		DataKey:            &pb.DataKey{Data: key, KeyId: 1},
		BlockCache:         bc,
		IndexCache:         ic,
	}
	if modify != nil {
		modify(&opts)
	}
	b := NewTableBuilder(opts)
	defer b.Close()
	val := []byte(strings.Repeat("v", 100))
	for i := range n {
		b.Add(y.KeyWithTs(fmt.Appendf(nil, "key%08d", i), 1), y.ValueStruct{Value: val}, 0)
	}
	tbl, err := CreateTable(filepath.Join(dir, IDToFilename(1)), b)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tbl.DecrRef() })
	return tbl
}

// TestVerifyChecksumBoundedEdgeq: checking an encrypted table's checksums
// allocates a fraction of the table (a CTR stream, about 600 bytes a
// block), not a decrypted copy of every block held to the end of the check
// and put in the block cache, and it reads the file, not the cache: it
// still finds a block damaged after a first check (with an error, not a
// panic).
func TestVerifyChecksumBoundedEdgeq(t *testing.T) {
	dir := t.TempDir()
	tbl := encryptedTable(t, dir, 20000, nil)
	if blocks := tbl.offsetsLength(); blocks < 100 {
		t.Fatalf("table has %d blocks, want at least 100", blocks)
	}

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if err := tbl.VerifyChecksum(); err != nil {
		t.Fatalf("VerifyChecksum on a whole table: %v", err)
	}
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	if limit := uint64(tbl.Size() / 4); alloc > limit {
		t.Errorf("VerifyChecksum allocated %d bytes for a table of %d bytes (%d blocks, index %d bytes), want at most %d",
			alloc, tbl.Size(), tbl.offsetsLength(), tbl.IndexSize(), limit)
	}

	damageBlock(t, tbl, 10)
	checkDamaged(t, tbl, 10)
}

// TestVerifyChecksumDamagedEdgeq: a damaged block of a plain, an encrypted
// and a compressed table is found (with an error naming it, not a panic).
func TestVerifyChecksumDamagedEdgeq(t *testing.T) {
	for name, modify := range map[string]func(*Options){
		"plain":      func(o *Options) { o.DataKey = nil },
		"encrypted":  nil,
		"compressed": func(o *Options) { o.DataKey, o.Compression, o.ZSTDCompressionLevel = nil, options.ZSTD, 1 },
	} {
		t.Run(name, func(t *testing.T) {
			tbl := encryptedTable(t, t.TempDir(), 5000, modify)
			if err := tbl.VerifyChecksum(); err != nil {
				t.Fatalf("VerifyChecksum on a whole table: %v", err)
			}
			damageBlock(t, tbl, 3)
			checkDamaged(t, tbl, 3)
		})
	}
}

// damageBlock flips a byte in the middle of block i of tbl's file.
func damageBlock(t *testing.T, tbl *Table, i int) {
	t.Helper()
	var ko fb.BlockOffset
	if !tbl.offsets(&ko, i) {
		t.Fatal("no block", i)
	}
	f, err := os.OpenFile(tbl.Filename(), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	off := int64(ko.Offset()) + int64(ko.Len())/2
	c := make([]byte, 1)
	if _, err := f.ReadAt(c, off); err != nil {
		t.Fatal(err)
	}
	c[0] ^= 0xff
	if _, err := f.WriteAt(c, off); err != nil {
		t.Fatal(err)
	}
}

// checkDamaged checks that VerifyChecksum fails on block i, without a panic.
func checkDamaged(t *testing.T, tbl *Table, i int) {
	t.Helper()
	var verr error
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("VerifyChecksum panicked on a damaged block: %v", r)
			}
		}()
		verr = tbl.VerifyChecksum()
	}()
	if verr == nil || !strings.Contains(verr.Error(), fmt.Sprintf("block: %d,", i)) {
		t.Fatalf("VerifyChecksum on a damaged block %d: %v, want an error naming it", i, verr)
	}
}
