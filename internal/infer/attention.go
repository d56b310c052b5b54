package infer

import (
	"fmt"
	"math"

	"github.com/actq/actq/internal/parallel"
	"github.com/actq/actq/internal/qkernel"
	"github.com/actq/actq/ops/kernel"
)

// Arithmetic selects how attention computes softmax(S)·V for each query
// row, after the scores hook. The zero value is the graph's arithmetic.
type Arithmetic struct {
	// ScoresFP16 rounds each visible score to IEEE half precision (after
	// the scores hook, before the softmax), as an attention kernel that
	// keeps Q·Kᵀ in fp16 does: the values a plan's FP16 scores site gives,
	// without its statistics.
	ScoresFP16 bool
	// PV selects the softmax and P·V arithmetic.
	PV PV
}

// PV is the arithmetic of attention's softmax and P·V.
type PV uint8

const (
	// PVFloat32 is the graph's arithmetic: the softmax of ops/kernel
	// (float32 values, float64 sums), then P·V in float32 by the GEMM.
	PVFloat32 PV = iota
	// PVHalf accumulates P·V in IEEE half precision with unnormalised
	// weights, as flash-attention kernels with an fp16 accumulator do:
	// with m the row's largest score,
	//
	//	w_j = fp16(e^(s_j − m))                     (e^ in float64, rounded once)
	//	a   = fp16(a + w_j·v_j)   for j = 0, 1, …   (one rounding per key and element: an fp16 FMA, qkernel.AccumulateFP16)
	//	l   = Σ w_j                                 (in float32)
	//	o   = a / l                                 (in float32)
	//
	// Keys with w_j = 0 are skipped: they add exactly 0.
	// Values are read as the cache holds them: a plan that quantizes the
	// values to FP16 models an fp16 cache. An accumulator past 65504
	// overflows to ±Inf, and the row's output to ±Inf or NaN: the
	// long-context failure this arithmetic is for.
	PVHalf
	// PVHalfOffset is PVHalf with the maximum offset by ln 8, m' = m + ln 8
	// (llama.cpp's fix for fp16 overflow in its flash-attention
	// accumulators), so every weight is at most 1/8 and the partial sums
	// stay 8 times smaller.
	PVHalfOffset
)

// String returns a short name of the arithmetic ("float32", "fp16", …).
func (p PV) String() string {
	switch p {
	case PVFloat32:
		return "float32"
	case PVHalf:
		return "fp16"
	case PVHalfOffset:
		return "fp16+ln8"
	}
	return fmt.Sprintf("PV(%d)", uint8(p))
}

func (a Arithmetic) check() error {
	if a.PV > PVHalfOffset {
		return fmt.Errorf("unknown attention arithmetic %v: %w", a.PV, ErrInput)
	}
	return nil
}

// attnBlock is the most score values (query rows × keys) a worker holds
// at once, 4 MiB: with many keys, fewer query rows go in a block (64 rows
// at 16384 keys), so memory stays O(block·positions) per worker however
// long the sequence, while the blocks' products keep enough rows for the
// GEMM's kernel (smaller blocks measured slower: bench/RESULTS.md).
const attnBlock = 1 << 20

// attnMinWork is the fewest multiply-adds of attention worth handing to
// another goroutine.
const attnMinWork = 1 << 16

// attnInnerWork is the size of a task's products from which the tasks run
// one after another: actq's Sgemm splits a product of twice its threadMin
// (2^21 multiply-adds) over two threads itself, and goroutines over the
// tasks on top would oversubscribe the cores.
const attnInnerWork = 1 << 22

// attnScratch is one worker's buffers.
type attnScratch struct {
	s    []float32 // a block of score rows
	site []float32 // a hook's output row
	w    []float64 // PVHalf: a row's weights
	acc  []float64 // PVHalf: the accumulators
}

// pad16 rounds n up to a multiple of 16. Score rows are softmaxed over
// pad16(visible) entries, the tail −Inf: the vector softmax kernels then
// run whole blocks of 16 over the visible keys, as they do over a row of
// the graph's (queries × keys) matrix, where the keys past the query are
// masked, so that the two give the same bits.
func pad16(n int) int { return (n + 15) &^ 15 }

// attention computes o (n rows of Heads·Dh) from the queries q of the
// workspace's n rows, positions first…first+n−1, and layer l's cache,
// which holds positions 0…first+n−1.
func (s *State) attention(l int, q, o []float32, n, first int) error {
	e, m := s.e, s.e.m
	end := first + n
	// Query rows per block: as many as fit attnBlock scores, 1 to 64.
	bq := min(max(attnBlock/pad16(end), 1), 64, n)
	blocks := (n + bq - 1) / bq
	tasks := m.Heads * blocks
	work := bq * end * e.dh // a task's products, about
	minTasks := max(1, attnMinWork/max(work, 1))
	workers := parallel.Workers(tasks, minTasks)
	if work >= attnInnerWork {
		workers = 1 // the products split themselves
	}
	for len(s.ws.attn) < workers {
		s.ws.attn = append(s.ws.attn, attnScratch{})
	}
	// Buffers grow to the rows of the caches' capacity at once, so that
	// decoding up to it allocates nothing more.
	width, most := pad16(end), pad16(max(end, s.cap))
	for w := range workers {
		sc := &s.ws.attn[w]
		if len(sc.s) < bq*width {
			sc.s = make([]float32, max(bq*width, most))
		}
		if len(sc.site) < width {
			sc.site = make([]float32, most)
		}
		if e.opt.Attention.PV != PVFloat32 && len(sc.w) < width {
			sc.w, sc.acc = make([]float64, most), make([]float64, e.dh)
		}
	}
	if workers <= 1 {
		return s.attendTasks(&s.ws.attn[0], l, q, o, first, bq, blocks, 0, tasks, n)
	}
	return parallel.ForWorkers(tasks, minTasks, func(w, lo, hi int) error {
		return s.attendTasks(&s.ws.attn[w], l, q, o, first, bq, blocks, lo, hi, n)
	})
}

// attendTasks runs tasks lo…hi−1: task t is head t/blocks, query block
// t%blocks (rows of bq).
func (s *State) attendTasks(sc *attnScratch, l int, q, o []float32, first, bq, blocks, lo, hi, n int) error {
	e, m := s.e, s.e.m
	L := &m.Layers[l]
	dh := e.dh
	qd := m.Heads * dh
	group := m.Heads / m.KVHeads
	kc, vc := s.kq[l], s.vq[l]
	for t := lo; t < hi; t++ {
		h, b := t/blocks, t%blocks
		r0, r1 := b*bq, min((b+1)*bq, n)
		rows := r1 - r0
		keys := first + r1 // the last row's visible keys: every row's fit
		width := pad16(keys)
		S := sc.s[:rows*width]
		kv := h / group
		kdata := kc.Data[kv*kc.Cap*dh:]
		vdata := vc.Data[kv*vc.Cap*dh:]
		e.matmul(true, rows, keys, dh, e.scale, q[r0*qd+h*dh:], qd, kdata, dh, 0, S, width) // Q·Kᵀ/√Dh
		for i := range rows {
			pos := first + r0 + i
			vis := pos + 1
			row := S[i*width : (i+1)*width]
			for j := vis; j < width; j++ {
				row[j] = float32(math.Inf(-1))
			}
			if L.Scores != nil {
				dst := sc.site[:vis]
				if err := L.Scores(dst, row[:vis], h, pos); err != nil {
					return fmt.Errorf("scores: %w", err)
				}
				copy(row, dst)
			}
			if e.opt.Attention.ScoresFP16 {
				if err := qkernel.RoundFloat(row[:vis], row[:vis], qkernel.FP16, 1); err != nil {
					return err
				}
			}
			if e.opt.Attention.PV != PVFloat32 {
				if err := e.halfPV(sc, row[:vis], vdata, o[(r0+i)*qd+h*dh:(r0+i)*qd+(h+1)*dh]); err != nil {
					return err
				}
				continue
			}
			p := pad16(vis)
			if err := kernel.Softmax(row[:p], row[:p], kernel.Along(p, p, 1)); err != nil {
				return err
			}
			clear(row[vis:])
			if L.Probs != nil {
				dst := sc.site[:vis]
				if err := L.Probs(dst, row[:vis], h, pos); err != nil {
					return fmt.Errorf("probabilities: %w", err)
				}
				copy(row, dst)
			}
		}
		if e.opt.Attention.PV == PVFloat32 {
			e.matmul(false, rows, dh, keys, 1, S, width, vdata, dh, 0, o[r0*qd+h*dh:], qd)
		}
	}
	return nil
}

// ln8 is ln 8, PVHalfOffset's offset of the maximum.
var ln8 = math.Log(8)

// halfUnderflow is a little below −25·ln 2 ≈ −17.33: e^x for any x below
// it is under 2^-25, half of fp16's smallest subnormal, and rounds to 0,
// so halfPV does not compute it.
const halfUnderflow = -17.5

// halfPV writes one query row's attention output to out under PVHalf or
// PVHalfOffset, from its visible scores and the head's values (rows of
// Dh, position 0 first).
func (e *Engine) halfPV(sc *attnScratch, scores, values, out []float32) error {
	dh := e.dh
	m := float32(math.Inf(-1))
	for _, v := range scores {
		if v > m {
			m = v
		}
	}
	shift := float64(m)
	if e.opt.Attention.PV == PVHalfOffset {
		shift += ln8
	}
	w := sc.w[:len(scores)]
	for j, v := range scores {
		if x := float64(v) - shift; x >= halfUnderflow {
			w[j] = math.Exp(x)
		} else {
			w[j] = 0 // below 2^-25: fp16 rounds it to 0
		}
	}
	if err := qkernel.RoundFloat(w, w, qkernel.FP16, 1); err != nil {
		return err
	}
	var l float32
	for _, wj := range w {
		l += float32(wj)
	}
	acc := sc.acc[:dh]
	clear(acc)
	if err := qkernel.AccumulateFP16(acc, w, values[:len(w)*dh]); err != nil {
		return err
	}
	for d, a := range acc {
		out[d] = float32(a) / l
	}
	return nil
}
