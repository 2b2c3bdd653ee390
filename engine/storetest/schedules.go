package storetest

import (
	"fmt"
	"testing"

	"github.com/edgeq/edgeq/engine/store"
)

// schedulesOf reads every stored schedule as text, for comparison.
func schedulesOf(t *testing.T, r store.ReadTx) string {
	t.Helper()
	ss, err := r.Schedules()
	if err != nil {
		t.Fatal(err)
	}
	out := ""
	for _, s := range ss {
		spec := "nil"
		if s.Spec != nil {
			spec = fmt.Sprintf("%q", s.Spec)
		}
		out += fmt.Sprintf("%s last=%d fired=%d spec=%s; ", s.Name, nanos(s.Last), nanos(s.Fired), spec)
	}
	return out
}

// testSchedules: PutSchedule replaces a record whole, a Txn reads its own
// writes, View sees them only after Commit, a nil Spec (a schedule of the
// configuration file) stays nil and an empty one stays empty, and
// DeleteSchedule removes one (an absent one is no error).
func testSchedules(t *testing.T, h Harness) {
	s := h.Open(t)
	view(t, s, func(r store.ReadTx) {
		if got := schedulesOf(t, r); got != "" {
			t.Errorf("schedules of a new store = %s, want none", got)
		}
	})
	tx := s.Begin()
	for _, sc := range []store.Schedule{
		{Name: "nightly", Spec: []byte(`{"cron":"0 3 * * *"}`), Last: sec(10), Fired: sec(5)},
		{Name: "b.file", Last: sec(20)},
		{Name: "a-empty", Spec: []byte{}},
	} {
		if err := tx.PutSchedule(sc); err != nil {
			t.Fatal(err)
		}
	}
	want := `a-empty last=0 fired=0 spec=""; b.file last=` + fmt.Sprint(nanos(sec(20))) + ` fired=0 spec=nil; nightly last=` +
		fmt.Sprint(nanos(sec(10))) + ` fired=` + fmt.Sprint(nanos(sec(5))) + ` spec="{\"cron\":\"0 3 * * *\"}"; `
	if got := schedulesOf(t, tx); got != want {
		t.Errorf("schedules in the Txn = %s\nwant %s", got, want)
	}
	view(t, s, func(r store.ReadTx) {
		if got := schedulesOf(t, r); got != "" {
			t.Errorf("schedules before Commit = %s, want none", got)
		}
	})
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	view(t, s, func(r store.ReadTx) {
		if got := schedulesOf(t, r); got != want {
			t.Errorf("schedules after Commit = %s\nwant %s", got, want)
		}
	})
	write(t, s, func(tx store.Txn) {
		if err := tx.PutSchedule(store.Schedule{Name: "nightly", Last: sec(30), Fired: sec(30)}); err != nil {
			t.Fatal(err)
		}
		for _, n := range []string{"a-empty", "absent"} {
			if err := tx.DeleteSchedule(n); err != nil {
				t.Fatalf("DeleteSchedule(%q): %v", n, err)
			}
		}
	})
	want = `b.file last=` + fmt.Sprint(nanos(sec(20))) + ` fired=0 spec=nil; nightly last=` +
		fmt.Sprint(nanos(sec(30))) + ` fired=` + fmt.Sprint(nanos(sec(30))) + ` spec=nil; `
	view(t, s, func(r store.ReadTx) {
		if got := schedulesOf(t, r); got != want {
			t.Errorf("schedules after a rewrite and a delete = %s\nwant %s", got, want)
		}
	})
	tx = s.Begin()
	defer tx.Discard()
	if err := tx.PutSchedule(store.Schedule{Name: ""}); err == nil {
		t.Error("PutSchedule of an empty name: no error")
	}
	if !tx.Fits(store.Op{Schedule: &store.Schedule{Name: "nightly", Spec: make([]byte, 4096)}}) {
		t.Error("an empty Txn does not fit one schedule")
	}
	if h.Reopen == nil {
		return
	}
	tx.Discard()
	s = h.Reopen(t, s)
	view(t, s, func(r store.ReadTx) {
		if got := schedulesOf(t, r); got != want {
			t.Errorf("schedules after a reopen = %s\nwant %s", got, want)
		}
	})
}
