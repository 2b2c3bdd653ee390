package crashfs_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a mount's server goroutines outlive it.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
