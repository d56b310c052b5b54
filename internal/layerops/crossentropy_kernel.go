package layerops

import (
	"github.com/actq/actq/internal/parallel"
	"github.com/actq/actq/ops/kernel"
)

// ceGrain is the fewest logits worth handing to another goroutine: each
// costs an exp.
const ceGrain = 1 << 15

// crossEntropyLoss returns −(1/c)·Σ log Softmax(row_i)[t_i] over the rows
// of logits (classes wide) whose target t_i is ≥ 0, c of them; 0 when c is
// 0. Each row's term is summed in float64, in row order, so the result
// does not depend on how the rows are split across goroutines.
func crossEntropyLoss[T float32 | float64](logits []T, targets []int, classes int) float64 {
	terms := make([]float64, len(targets))
	row := kernel.Along(classes, classes, 1)
	_ = parallel.For(len(targets), max(ceGrain/max(classes, 1), 1), func(lo, hi int) error {
		lp := make([]T, classes)
		for i := lo; i < hi; i++ {
			if t := targets[i]; t >= 0 {
				// The lengths fit: the op checked the shapes.
				_ = kernel.LogSoftmax(lp, logits[i*classes:(i+1)*classes], row)
				terms[i] = -float64(lp[t])
			}
		}
		return nil
	})
	var sum float64
	count := 0
	for i, t := range targets {
		if t >= 0 {
			sum += terms[i]
			count++
		}
	}
	if count == 0 {
		return 0
	}
	return sum / float64(count)
}

// crossEntropyGrad writes the gradient of crossEntropyLoss times dy into
// dst (the logits' shape): (dy/c)·(Softmax(row_i) − onehot(t_i)) for the
// rows counted, 0 for the others.
func crossEntropyGrad[T float32 | float64](dst, logits []T, targets []int, classes int, dy float64) {
	count := 0
	for _, t := range targets {
		if t >= 0 {
			count++
		}
	}
	s := T(dy / float64(max(count, 1)))
	_ = parallel.For(len(targets), max(ceGrain/max(classes, 1), 1), func(lo, hi int) error {
		d, x := dst[lo*classes:hi*classes], logits[lo*classes:hi*classes]
		_ = kernel.Softmax(d, x, kernel.Along(len(x), classes, 1))
		for i := lo; i < hi; i++ {
			out := dst[i*classes : (i+1)*classes]
			t := targets[i]
			if t < 0 {
				clear(out)
				continue
			}
			for j := range out {
				out[j] *= s
			}
			out[t] -= s
		}
		return nil
	})
}
