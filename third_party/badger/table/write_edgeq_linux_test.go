// edgeq: see README.edgeq.md, "Table writes".

package table

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4/y"
	"github.com/stretchr/testify/require"
)

// mappingPerms returns the permissions of this process's mapping of path
// (/proc/self/maps), "" when it has none.
func mappingPerms(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Skip("no /proc/self/maps:", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 6 && f[5] == path {
			return f[1]
		}
	}
	return ""
}

// TestCreateTableWritesFileEdgeq: CreateTable writes a table of more blocks
// than one writev takes with write(2), and maps it read-only: nothing is
// written through the mapping. The table reads back whole.
func TestCreateTableWritesFileEdgeq(t *testing.T) {
	opts := Options{BlockSize: 4 << 10, BloomFalsePositive: 0.01}
	b := NewTableBuilder(opts)
	defer b.Close()
	const n = 40000
	val := bytes.Repeat([]byte("v"), 100)
	for i := range n {
		b.Add(y.KeyWithTs([]byte(fmt.Sprintf("key%06d", i)), 1), y.ValueStruct{Value: val, Meta: 'A'}, 0)
	}
	fname := filepath.Join(t.TempDir(), "000001.sst")
	tbl, err := CreateTable(fname, b)
	require.NoError(t, err)
	defer func() { require.NoError(t, tbl.DecrRef()) }()
	require.Greater(t, tbl.offsetsLength(), iovMax, "the table must need more than one writev")

	perms := mappingPerms(t, fname)
	require.NotEmpty(t, perms, "the table is not mapped")
	require.Equal(t, "r", perms[:1])
	require.Equal(t, "-", perms[1:2], "the table is mapped writable (%s)", perms)

	require.NoError(t, tbl.VerifyChecksum())
	it := tbl.NewIterator(0)
	defer it.Close()
	count := 0
	for it.Rewind(); it.Valid(); it.Next() {
		require.Equal(t, fmt.Sprintf("key%06d", count), string(y.ParseKey(it.Key())))
		require.Equal(t, val, it.Value().Value)
		count++
	}
	require.Equal(t, n, count)
}

// TestWritevAllEdgeq: every byte of many pieces, empty ones among them, in
// order, past one writev's limit.
func TestWritevAllEdgeq(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "pieces"))
	require.NoError(t, err)
	defer f.Close()
	var ps [][]byte
	var want bytes.Buffer
	for i := range 3 * iovMax {
		p := []byte(fmt.Sprintf("piece %d;", i))
		if i%7 == 0 {
			p = nil
		}
		ps = append(ps, p)
		want.Write(p)
	}
	require.NoError(t, writePieces(f, ps))
	got, err := os.ReadFile(f.Name())
	require.NoError(t, err)
	require.Equal(t, want.Bytes(), got)
}
