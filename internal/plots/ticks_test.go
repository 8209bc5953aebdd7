package plots

import (
	"math"
	"slices"
	"strconv"
	"testing"
)

// mantissa is step over the largest power of ten no larger than it.
func mantissa(step float64) float64 {
	return step / math.Pow(10, math.Floor(math.Log10(step)+1e-9))
}

// isNiceStep reports whether step is 1, 2 or 5 times a power of ten.
func isNiceStep(step float64) bool {
	m := mantissa(step)
	return math.Abs(m-1) < 1e-6 || math.Abs(m-2) < 1e-6 || math.Abs(m-5) < 1e-6
}

func labels(ts []tick) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.label)
	}
	return out
}

func TestNiceTicks(t *testing.T) {
	for _, r := range [][2]float64{
		{0, 1}, {0.007, 0.44}, {87.4, 99.9}, {-3, 7}, {1e-6, 3e-6}, {0, 1e6},
		{12345, 12346}, {-0.5, 0.5}, {0.061, 0.199}, {97.9, 98.1}, {-250, -10}, {0.9, 1.1},
	} {
		lo, hi := r[0], r[1]
		ts := niceTicks(lo, hi)
		if len(ts) < 3 || len(ts) > maxValueTicks {
			t.Errorf("[%g, %g]: %d ticks %v, want 3 to %d", lo, hi, len(ts), labels(ts), maxValueTicks)
			continue
		}
		step := ts[1].v - ts[0].v
		if !isNiceStep(step) {
			t.Errorf("[%g, %g]: step %g is not 1, 2 or 5 times a power of ten", lo, hi, step)
		}
		seen := map[string]bool{}
		for i, tk := range ts {
			if tk.v < lo-1e-9*(hi-lo) || tk.v > hi+1e-9*(hi-lo) {
				t.Errorf("[%g, %g]: tick %g outside", lo, hi, tk.v)
			}
			if i > 0 && math.Abs(tk.v-ts[i-1].v-step) > 1e-9*step {
				t.Errorf("[%g, %g]: uneven ticks %v", lo, hi, labels(ts))
			}
			if v, err := strconv.ParseFloat(tk.label, 64); err != nil || math.Abs(v-tk.v) > step/100 {
				t.Errorf("[%g, %g]: label %q for %g", lo, hi, tk.label, tk.v)
			}
			if seen[tk.label] {
				t.Errorf("[%g, %g]: label %q twice in %v", lo, hi, tk.label, labels(ts))
			}
			seen[tk.label] = true
		}
		// The next smaller nice step would have given too many: 1 comes
		// after 0.5, 2 after 1, 5 after 2.
		smaller := step / 2
		if math.Abs(mantissa(step)-5) < 1e-6 {
			smaller = step * 2 / 5
		}
		if first, last := multiples(lo, hi, smaller); last-first+1 <= maxValueTicks {
			t.Errorf("[%g, %g]: step %g, but %g gives %d ticks", lo, hi, step, smaller, last-first+1)
		}
	}

	// The loss and accuracy of the test's run, padded as valueAxis pads.
	for _, c := range []struct {
		lo, hi float64
		want   []string
	}{
		{0.0074, 0.4396, []string{"0.05", "0.10", "0.15", "0.20", "0.25", "0.30", "0.35", "0.40"}},
		{87.35, 99.85, []string{"88", "90", "92", "94", "96", "98"}},
		{-1, 1, []string{"-1.0", "-0.5", "0.0", "0.5", "1.0"}},
		// Exponents rather than long strings of zeros.
		{0.9e6, 4.1e6, []string{"1e+06", "1.5e+06", "2e+06", "2.5e+06", "3e+06", "3.5e+06", "4e+06"}},
		{1.1e-5, 2.9e-5, []string{"1.5e-05", "2e-05", "2.5e-05"}},
		{0, 1e300, []string{"0", "2e+299", "4e+299", "6e+299", "8e+299", "1e+300"}},
	} {
		if got := labels(niceTicks(c.lo, c.hi)); !slices.Equal(got, c.want) {
			t.Errorf("[%g, %g]: %v, want %v", c.lo, c.hi, got, c.want)
		}
	}
}

func TestEpochTicks(t *testing.T) {
	for _, c := range []struct {
		lo, hi float64
		want   []string
	}{
		{0.5, 1.5, []string{"1"}}, // one epoch, as epochAxis pads it
		{0.55, 10.45, []string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10"}},
		{0.9, 3.1, []string{"1", "2", "3"}}, // no 1.5
		{0.5, 30.5, []string{"5", "10", "15", "20", "25", "30"}},
		{-4, 104, []string{"0", "20", "40", "60", "80", "100"}},
	} {
		if got := labels(epochTicks(c.lo, c.hi)); !slices.Equal(got, c.want) {
			t.Errorf("[%g, %g]: %v, want %v", c.lo, c.hi, got, c.want)
		}
	}
	for hi := 2; hi <= 1000; hi = hi*3/2 + 1 {
		ts := epochTicks(1, float64(hi))
		if len(ts) == 0 || len(ts) > 10 || !isNiceStep(max(1, ts[len(ts)-1].v-ts[max(0, len(ts)-2)].v)) {
			t.Errorf("epochs 1 to %d: %v", hi, labels(ts))
		}
		for _, tk := range ts {
			if tk.v != math.Trunc(tk.v) {
				t.Errorf("epochs 1 to %d: tick at %g is not a whole epoch", hi, tk.v)
			}
		}
	}
}

func TestAxes(t *testing.T) {
	a := epochAxis(3, 3)
	if a.min != 2.5 || a.max != 3.5 || len(a.ticks) != 1 || a.ticks[0].label != "3" {
		t.Errorf("one epoch: %+v, want 2.5 to 3.5 with one label 3", a)
	}
	// No point on the frame: the values lie inside the range, not at its
	// ends.
	v := valueAxis([]float64{0.2, 0.4}, []float64{0.3})
	if !(v.min < 0.2 && v.min > 0.18 && v.max > 0.4 && v.max < 0.42) {
		t.Errorf("values 0.2 to 0.4: axis %g to %g, want 5%% to spare", v.min, v.max)
	}
	if f := valueAxis([]float64{0, 0}); !(f.min < 0 && f.max > 0 && len(f.ticks) >= 3) {
		t.Errorf("flat zero: %+v", f)
	}
}
