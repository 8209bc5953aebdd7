package plots

import (
	"math"
	"strconv"
)

// tick is a labelled value on an axis.
type tick struct {
	v     float64
	label string
}

// maxValueTicks is the most labels niceTicks puts on an axis: enough to
// read values off a panel a few hundred pixels high, few enough that they
// do not crowd.
const maxValueTicks = 8

// niceTicks labels [lo, hi] at the multiples of the smallest step of 1, 2
// or 5 times a power of ten that gives at most maxValueTicks labels, so
// between about 3 and 8 of them.
func niceTicks(lo, hi float64) []tick {
	step := niceStep(lo, hi, maxValueTicks)
	return ticksEvery(lo, hi, step, numberFormat(lo, hi, step))
}

// numberFormat formats the multiples of step in [lo, hi] with as many
// decimals as the step needs, all alike so that they line up (0.05, 0.10,
// 0.15), or, for values so large or steps so small that this would take
// more than about ten characters, in exponent form (1.5e+06).
func numberFormat(lo, hi, step float64) func(float64) string {
	exp := math.Floor(math.Log10(step) + 1e-9)
	mag := math.Floor(math.Log10(max(math.Abs(lo), math.Abs(hi))))
	if exp < -4 || mag >= 6 {
		digits := int(max(0, mag-exp)) + 1
		return func(v float64) string { return strconv.FormatFloat(v, 'g', digits, 64) }
	}
	decimals := int(max(0, -exp))
	return func(v float64) string { return strconv.FormatFloat(v, 'f', decimals, 64) }
}

// epochTicks labels the whole epochs in [lo, hi] every 1, 2, 5, 10, 20,
// ... epochs, at most ten of them: a value axis's ticks would label a
// short run at epoch 1.5.
func epochTicks(lo, hi float64) []tick {
	return ticksEvery(lo, hi, max(1, niceStep(lo, hi, 10)), func(v float64) string { return strconv.Itoa(int(v)) })
}

// niceStep is the smallest step of 1, 2 or 5 times a power of ten whose
// multiples in [lo, hi] number at most most.
func niceStep(lo, hi float64, most int) float64 {
	if !(hi > lo) {
		return 1
	}
	// A power of ten no larger than an even split of the range into most
	// steps gives too many ticks or just enough; ten times it gives fewer
	// than most, so one of the four candidates fits.
	p := math.Pow(10, math.Floor(math.Log10((hi-lo)/float64(most))))
	for _, m := range []float64{1, 2, 5} {
		if first, last := multiples(lo, hi, m*p); last-first+1 <= most {
			return m * p
		}
	}
	return 10 * p
}

// multiples is the first and last k with k*step in [lo, hi], allowing for
// rounding: 0.3/0.1 is 2.9999999999999996.
func multiples(lo, hi, step float64) (first, last int) {
	const eps = 1e-9
	return int(math.Ceil(lo/step - eps)), int(math.Floor(hi/step + eps))
}

// ticksEvery labels each multiple of step in [lo, hi] with format.
func ticksEvery(lo, hi, step float64, format func(float64) string) []tick {
	first, last := multiples(lo, hi, step)
	var ticks []tick
	for k := first; k <= last; k++ {
		// k*step rather than adding step up: the sum drifts.
		v := float64(k) * step
		ticks = append(ticks, tick{v: v, label: format(v)})
	}
	return ticks
}
