package table

import (
	"crypto/rand"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4/fb"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/dgraph-io/badger/v4/pb"
	"github.com/dgraph-io/badger/v4/y"
	"github.com/dgraph-io/ristretto/v2"
)

// TestEncryptedBuilderInPlaceEdgeq: an encrypted table builder encrypts
// each block in the room its block already has, so a full table takes about
// its own size of the builder's buffers, as a plain build does, not twice
// (an encrypted copy of every block beside the plain one, which brings the
// builder to the end of its first buffer, twice the table size, and past
// it into a second one twice as large).
func TestEncryptedBuilderInPlaceEdgeq(t *testing.T) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	const tableSize = 4 << 20
	opts := Options{
		TableSize:          tableSize,
		BlockSize:          4 << 10,
		BloomFalsePositive: 0.01,
		Compression:        options.None,
		DataKey:            &pb.DataKey{Data: key, KeyId: 1},
	}
	ic, err := ristretto.NewCache(&ristretto.Config[uint64, *fb.TableIndex]{
		NumCounters: 80, MaxCost: 2 << 20, BufferItems: 64,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ic.Close()
	opts.IndexCache = ic
	b := NewTableBuilder(opts)
	defer b.Close()
	val := []byte(strings.Repeat("v", 100))
	n := 0
	for ; !b.ReachedCapacity(); n++ {
		b.Add(y.KeyWithTs(fmt.Appendf(nil, "key%08d", n), 1), y.ValueStruct{Value: val}, 0)
	}
	tbl, err := CreateTable(filepath.Join(t.TempDir(), IDToFilename(1)), b)
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.DecrRef()
	if got, limit := b.alloc.Size(), tableSize+tableSize/4; got > limit {
		t.Errorf("building a %d-byte encrypted table of %d keys took %d bytes of buffers, want at most %d",
			tableSize, n, got, limit)
	}

	it := tbl.NewIterator(0)
	defer it.Close()
	i := 0
	for it.Rewind(); it.Valid(); it.Next() {
		if want := fmt.Sprintf("key%08d", i); string(y.ParseKey(it.Key())) != want || string(it.Value().Value) != string(val) {
			t.Fatalf("entry %d: %q = %q, want %q = %q", i, y.ParseKey(it.Key()), it.Value().Value, want, val)
		}
		i++
	}
	if i != n {
		t.Fatalf("table holds %d entries, want %d", i, n)
	}
}
