//go:build !linux

package storage

// tablePager does nothing outside Linux (see pageout_linux.go).
type tablePager struct{}

func newTablePager(string) *tablePager { return &tablePager{} }

func (p *tablePager) run() (int64, error) { return 0, nil }
