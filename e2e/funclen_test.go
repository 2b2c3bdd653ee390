package e2e

import (
	"os/exec"
	"testing"
)

// TestFunctionLength keeps every production function within 80 lines
// (STYLE.md: a longer one usually holds two jobs); tests and third_party
// are left out. scripts/longfuncs lists the offenders.
func TestFunctionLength(t *testing.T) {
	out, err := exec.Command("go", "run", "../scripts/longfuncs", "-max", "80", "..").CombinedOutput()
	if err != nil {
		t.Errorf("functions over 80 lines (go run ./scripts/longfuncs):\n%s", out)
	}
}
