package graph

import (
	"fmt"
	"math"

	"github.com/actq/actq/internal/infer"
	"github.com/actq/actq/ops"
	"github.com/actq/actq/ops/kernel"
	"github.com/actq/actq/quantize"
)

// The Generator computes, site by site, what the last row of a full
// forward pass computes (an Evaluator on the sequence so far, batch 1),
// one token at a time. A site's quantization carries over when its scales
// depend only on the token's own row: the functions below check each
// site's spec, refuse the ones whose scales span tokens (with an error
// naming the site and why), and turn the others into the engine's hooks,
// which call quantize's own code on the rows.

// errIncremental wraps the error of a site the Generator cannot compute
// one token at a time.
func errIncremental(s *Site, why string) error {
	return fmt.Errorf("site %q (%v, %v %v): %s, which the Generator cannot compute one token at a time: %w",
		s.Name, s.Kind, s.Quant.Spec.Format, s.Quant.Spec.Granularity, why, ErrConfig)
}

// siteSpec returns the spec a site quantizes with: its Quant's, with a
// learnable site's current scales fixed in it.
func siteSpec(s *Site) quantize.Spec {
	sp := s.Quant.Spec
	if s.scale != nil {
		sp.Scale = s.Scale()
	}
	return sp
}

// normAxis returns axis counted from the front of a rank-dimensional
// shape, or −1 if it is out of range.
func normAxis(axis, rank int) int {
	if axis < 0 {
		axis += rank
	}
	if axis < 0 || axis >= rank {
		return -1
	}
	return axis
}

// rowHook returns the hook of a site on (tokens, cols) rows: an FFN's
// input or hidden layer, a block's output. Supported: Passthrough,
// unscaled float casts, dynamic scales per token (PerRow, PerChannel on
// axis 0, PerGroup), fixed scales shared by every token (PerTensor,
// PerChannel on axis 1).
func rowHook(s *Site, cols int, check bool) (infer.RowSite, error) {
	finite := func(dst []float32, first int) error {
		if !check {
			return nil
		}
		return checkFinite(s.Name, dst, false, func(i int) []int { return []int{first + i/cols, i % cols} })
	}
	if s.Quant.Passthrough {
		return func(dst, x []float32, rows, cols, first int) error {
			copy(dst, x)
			quantize.PassthroughSlice(x, &s.stats)
			return finite(dst, first)
		}, nil
	}
	sp := siteSpec(s)
	switch axis := normAxis(sp.Axis, 2); {
	case sp.Dynamic() && sp.Granularity == quantize.PerTensor:
		return nil, errIncremental(s, "its dynamic scale spans every token of the sequence")
	case sp.Dynamic() && sp.Granularity == quantize.PerChannel && axis == 1:
		return nil, errIncremental(s, "its dynamic scales per feature (Axis 1) span every token of the sequence")
	case sp.Scale != nil && (sp.Granularity == quantize.PerGroup || sp.Granularity == quantize.PerRow ||
		sp.Granularity == quantize.PerChannel && axis == 0):
		return nil, errIncremental(s, "its fixed scales belong to token positions of the batch they were set for")
	}
	if err := quantize.FakeQuantSlice(make([]float32, cols), make([]float32, cols), []int{1, cols}, sp, nil); err != nil {
		return nil, fmt.Errorf("site %q: %w", s.Name, err)
	}
	return func(dst, x []float32, rows, cols, first int) error {
		if err := quantize.FakeQuantSlice(dst, x, []int{rows, cols}, sp, &s.stats); err != nil {
			return fmt.Errorf("site %q: %w", s.Name, err)
		}
		return finite(dst, first)
	}, nil
}

// attnHook returns the hook of an attention scores or probabilities site,
// which the graph sees as (batch, heads, queries, keys) with the keys after
// each query masked (−Inf scores, 0 probabilities). The hook gets a query
// row's visible keys: dynamic scales ignore −Inf and are not moved by the
// zeros, so per row (PerRow) or per group of keys (PerGroup, the last group
// cut at the visible keys) it computes the graph's values. Supported:
// Passthrough, unscaled float casts, those dynamic scales, and fixed
// scales per tensor or per head (PerChannel on axis 1).
func attnHook(s *Site, heads int, check bool) (infer.AttnSite, error) {
	finite := func(dst []float32, head, query int) error {
		if !check {
			return nil
		}
		return checkFinite(s.Name, dst, s.Kind == SiteAttnScores, func(i int) []int { return []int{0, head, query, i} })
	}
	if s.Quant.Passthrough {
		return func(dst, x []float32, head, query int) error {
			copy(dst, x)
			quantize.PassthroughSlice(x, &s.stats)
			return finite(dst, head, query)
		}, nil
	}
	sp := siteSpec(s)
	var perHead []quantize.Spec // fixed scales per head
	switch axis := normAxis(sp.Axis, 4); {
	case sp.Dynamic() && sp.Granularity == quantize.PerTensor:
		return nil, errIncremental(s, "its dynamic scale spans every query row")
	case sp.Dynamic() && sp.Granularity == quantize.PerChannel:
		return nil, errIncremental(s, fmt.Sprintf("its dynamic scales per index of axis %d span several query rows (use quantize.PerRow for a scale per query row)", sp.Axis))
	case sp.Scale != nil && (sp.Granularity == quantize.PerGroup || sp.Granularity == quantize.PerRow):
		return nil, errIncremental(s, "its fixed scales belong to query positions of the batch they were set for")
	case sp.Scale != nil && sp.Granularity == quantize.PerChannel && axis != 1:
		return nil, errIncremental(s, fmt.Sprintf("its fixed scales per index of axis %d belong to positions (only per-head scales, Axis 1, carry over)", sp.Axis))
	case sp.Scale != nil && sp.Granularity == quantize.PerChannel:
		if len(sp.Scale) != heads {
			return nil, fmt.Errorf("site %q: %d fixed scales per head, the model has %d heads: %w", s.Name, len(sp.Scale), heads, quantize.ErrSpec)
		}
		for h := range heads {
			one := sp
			one.Granularity, one.Scale, one.ZeroPoint = quantize.PerTensor, sp.Scale[h:h+1], nil
			if sp.ZeroPoint != nil {
				one.ZeroPoint = sp.ZeroPoint[h : h+1]
			}
			perHead = append(perHead, one)
		}
	}
	group := 0
	if sp.Granularity == quantize.PerGroup {
		group = sp.GroupSize
		if group <= 0 {
			return nil, fmt.Errorf("site %q: Spec.GroupSize %d, want > 0: %w", s.Name, group, quantize.ErrSpec)
		}
	}
	probe := sp
	if perHead != nil {
		probe = perHead[0]
	}
	if err := quantize.FakeQuantSlice(make([]float32, max(group, 1)), make([]float32, max(group, 1)), []int{1, max(group, 1)}, probe, nil); err != nil {
		return nil, fmt.Errorf("site %q: %w", s.Name, err)
	}
	tail := sp // a partial last group: one scale over its visible keys
	tail.Granularity = quantize.PerRow
	return func(dst, x []float32, head, query int) error {
		spec, n := sp, len(x)
		if perHead != nil {
			spec = perHead[head]
		}
		full := n
		if group > 0 {
			full = n - n%group
		}
		if full > 0 {
			if err := quantize.FakeQuantSlice(dst[:full], x[:full], []int{1, full}, spec, &s.stats); err != nil {
				return fmt.Errorf("site %q: %w", s.Name, err)
			}
		}
		if full < n {
			if err := quantize.FakeQuantSlice(dst[full:n], x[full:n], []int{1, n - full}, tail, &s.stats); err != nil {
				return fmt.Errorf("site %q: %w", s.Name, err)
			}
		}
		return finite(dst, head, query)
	}, nil
}

// checkFinite returns an *ops.NonFiniteError labelled with the site's name
// if x holds NaN or ±Inf (−Inf allowed when masked), as the graph's
// CheckFinite node does; coord maps an index of x to a coordinate.
func checkFinite(name string, x []float32, masked bool, coord func(int) []int) error {
	nan, pos, neg, first := kernel.NonFinite(x)
	if masked {
		neg = 0
		first = -1
		for i, v := range x {
			if v != v || v > math.MaxFloat32 { // NaN or +Inf
				first = i
				break
			}
		}
	}
	if nan+pos+neg == 0 {
		return nil
	}
	return &ops.NonFiniteError{Label: name, NaN: nan, PosInf: pos, NegInf: neg, Total: len(x), First: first,
		Coord: coord(first), Value: float64(x[first])}
}

// kvHook returns the hook of a key or value cache site. The graph sees
// the keys as Kᵀ (batch, KVHeads, Dh, seq) and the values as (batch,
// KVHeads, seq, Dh); the hook gathers the cache's rows into that layout
// (batch 1), quantizes them with quantize's code and writes them back.
// Which rows depends on the spec:
//
//   - scales that each cover one position (values per token: PerRow,
//     PerGroup, PerChannel on axis 2; keys per token: PerChannel on axis
//     3), fixed scales shared by all positions (per tensor, head or
//     channel), unscaled casts and Passthrough: the new rows only;
//   - keys in groups of GroupSize tokens (PerGroup on Kᵀ): the rows of
//     the current group, whose scale the new rows move; a partial last
//     group takes its scales from the tokens it has;
//   - dynamic scales over every position (KIVI's per-channel keys, PerRow
//     on Kᵀ; any per-tensor or per-head dynamic scale): every row, from
//     the float32 cache, at every step (O(positions)).
//
// In the last two cases the step's attention reads what a full forward
// pass over the sequence so far reads in the first layer; deeper layers
// read keys and values that earlier steps computed from the scales of
// their time, where the full pass recomputes them with the latest
// scales, so there the Generator is what a requantizing KV cache computes,
// not the full pass. Fixed scales that belong to positions are refused.
func kvHook(s *Site, kvHeads, dh int, check bool) (infer.KVSite, error) {
	keys := s.Kind == SiteAttnKeys
	seqAxis := 2
	if keys {
		seqAxis = 3
	}
	sp := siteSpec(s)
	axis := normAxis(sp.Axis, 4)
	group := 0     // keys in groups of tokens
	spans := false // dynamic scales over every position
	switch {
	case s.Quant.Passthrough:
	case sp.Dynamic() && sp.Granularity == quantize.PerTensor:
		spans = true
	case sp.Dynamic() && sp.Granularity == quantize.PerChannel:
		spans = axis != seqAxis
	case sp.Dynamic() && keys && sp.Granularity == quantize.PerRow:
		spans = true
	case sp.Dynamic() && keys && sp.Granularity == quantize.PerGroup:
		if sp.GroupSize <= 0 {
			return nil, fmt.Errorf("site %q: Spec.GroupSize %d, want > 0: %w", s.Name, sp.GroupSize, quantize.ErrSpec)
		}
		group = sp.GroupSize
	case sp.Scale != nil && (sp.Granularity == quantize.PerGroup || sp.Granularity == quantize.PerRow ||
		sp.Granularity == quantize.PerChannel && axis == seqAxis):
		return nil, errIncremental(s, "its fixed scales belong to token positions of the batch they were set for")
	}
	// shape returns the graph's layout of m positions.
	shape := func(m int) []int {
		if keys {
			return []int{1, kvHeads, dh, m}
		}
		return []int{1, kvHeads, m, dh}
	}
	if !s.Quant.Passthrough {
		probe := max(group, 1)
		n := kvHeads * dh * probe
		if err := quantize.FakeQuantSlice(make([]float32, n), make([]float32, n), shape(probe), sp, nil); err != nil {
			return nil, fmt.Errorf("site %q: %w", s.Name, err)
		}
	}
	tail := sp // a partial group of keys: one scale per channel over its tokens
	tail.Granularity = quantize.PerRow
	// run quantizes positions [lo, hi) of every head with spec.
	run := func(quant, master infer.Cache, lo, hi int, spec quantize.Spec) error {
		m := hi - lo
		buf, out := make([]float32, kvHeads*m*dh), make([]float32, kvHeads*m*dh)
		for h := range kvHeads {
			for t := range m {
				row := master.Row(h, lo+t)
				if keys {
					for d, v := range row {
						buf[(h*dh+d)*m+t] = v
					}
				} else {
					copy(buf[(h*m+t)*dh:], row)
				}
			}
		}
		if s.Quant.Passthrough {
			copy(out, buf)
			quantize.PassthroughSlice(buf, &s.stats)
		} else if err := quantize.FakeQuantSlice(out, buf, shape(m), spec, &s.stats); err != nil {
			return fmt.Errorf("site %q: %w", s.Name, err)
		}
		for h := range kvHeads {
			for t := range m {
				row := quant.Row(h, lo+t)
				if keys {
					for d := range row {
						row[d] = out[(h*dh+d)*m+t]
					}
				} else {
					copy(row, out[(h*m+t)*dh:])
				}
			}
		}
		if !check {
			return nil
		}
		return checkFinite(s.Name, out, false, func(i int) []int {
			if keys {
				return []int{0, i / (dh * m), i / m % dh, lo + i%m}
			}
			return []int{0, i / (m * dh), lo + i/dh%m, i % dh}
		})
	}
	return func(quant, master infer.Cache, from, n int) error {
		switch {
		case spans:
			return run(quant, master, 0, n, sp)
		case group > 0:
			lo := from - from%group
			full := n - (n-lo)%group // the complete groups from lo
			if full > lo {
				if err := run(quant, master, lo, full, sp); err != nil {
					return err
				}
			}
			if full < n {
				return run(quant, master, full, n, tail)
			}
			return nil
		}
		return run(quant, master, from, n, sp)
	}, nil
}
