package z

import (
	"os"
	"path/filepath"
	"testing"
)

// TestMmapFileSyncsDirEdgeq: creating a mapped file fsyncs its directory,
// or a power cut can take the file's name away with everything synced in
// it (Badger's new value-log and WAL files). Opening an existing file does
// not.
func TestMmapFileSyncsDirEdgeq(t *testing.T) {
	var synced []string
	syncDir = func(dir string) error {
		synced = append(synced, filepath.Clean(dir))
		return SyncDir(dir)
	}
	t.Cleanup(func() { syncDir = SyncDir })

	dir := t.TempDir()
	path := filepath.Join(dir, "000001.vlog")
	mf, err := OpenMmapFile(path, os.O_CREATE|os.O_RDWR|os.O_EXCL, 1<<20)
	if err != NewFile {
		t.Fatalf("OpenMmapFile: %v, want NewFile", err)
	}
	if err := mf.Close(-1); err != nil {
		t.Fatal(err)
	}
	if len(synced) != 1 || synced[0] != filepath.Clean(dir) {
		t.Fatalf("directories synced creating %s: %q, want [%s]", path, synced, dir)
	}

	synced = nil
	mf, err = OpenMmapFile(path, os.O_RDWR, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if err := mf.Close(-1); err != nil {
		t.Fatal(err)
	}
	if len(synced) != 0 {
		t.Fatalf("directories synced opening an existing file: %q, want none", synced)
	}
}
