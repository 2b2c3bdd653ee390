package e2e

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestOrphanTableAfterKillIsNotLoss: a SIGKILL between Badger writing a
// table file and listing it in its MANIFEST (a memtable flush or a
// compaction cut short) leaves a table file the MANIFEST does not list.
// Its data is still in the write-ahead log or in the listed tables, so
// the restart that deletes it loses nothing and must not say that jobs may
// be lost. The test makes that state on the real binary: kill, then an
// unlisted table file.
func TestOrphanTableAfterKillIsNotLoss(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	ctx := context.Background()
	c := &http.Client{Timeout: 10 * time.Second}
	d := startDaemon(t, data)
	for range 3 {
		if code, err := call(ctx, c, "POST", d.base+"/v1/queues/q/jobs", []byte("x"), nil); err != nil || code != 201 {
			t.Fatalf("enqueue: %d %v", code, err)
		}
	}
	d.kill()
	orphan := filepath.Join(data, "009999.sst")
	if err := os.WriteFile(orphan, []byte("a table cut short"), 0o600); err != nil {
		t.Fatal(err)
	}

	d = startDaemon(t, data)
	var q struct {
		Ready int `json:"ready"`
	}
	if code, err := call(ctx, c, "GET", d.base+"/v1/queues/q", nil, &q); err != nil || code != 200 || q.Ready != 3 {
		t.Fatalf("after the restart: %d %v, ready %d; want the 3 jobs", code, err, q.Ready)
	}
	if _, err := os.Stat(orphan); !os.IsNotExist(err) {
		t.Errorf("the unlisted table file is still there: %v", err)
	}
	log := d.log.String()
	if strings.Contains(log, "jobs may be lost") || strings.Contains(log, `level=WARN msg="badger`) {
		t.Errorf("a warning of loss where nothing was lost:\n%s", log)
	}
	if !strings.Contains(log, "Table file 9999") {
		t.Errorf("the removal of the table file is not logged:\n%s", log)
	}
}
