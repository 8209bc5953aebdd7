package main

import (
	"strings"
	"testing"
)

// TestPlanCommand prints the plan of a small network: every launch in order
// and the totals, with the loss and the velocities the flags ask for.
func TestPlanCommand(t *testing.T) {
	code, out, errb := runCmd(t, "plan", "--hidden", "7", "--batch", "3", "--loss", "mse", "--optimizer", "sgd")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb)
	}
	for _, want := range []string{"network 784-7-10, batch 3, loss mse", "softmax_mse", "dZ1 = f'(Z1) . (dZ2 W2^T)",
		"3 x 784 x 7", "8 launches"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "velocity") {
		t.Errorf("sgd plan lists velocities:\n%s", out)
	}
	if code, _, _ := runCmd(t, "plan", "--hidden", "0"); code != 2 {
		t.Errorf("plan --hidden 0: exit %d, want 2", code)
	}
}
