package infer

import "github.com/actq/actq/internal/layerops"

// ropeTable writes the rotation table (layerops' RoPE table) of the
// workspace's n rows, positions first…first+n−1, into the workspace: it
// depends only on the positions, so every layer's rotate reads the one
// table of a chunk.
func (s *State) ropeTable(n, first int) {
	half := s.e.dh / 2
	ws := &s.ws
	if len(ws.cos) < n*half {
		ws.cos, ws.sin = make([]float64, n*half), make([]float64, n*half)
	}
	layerops.RoPETable(ws.cos[:n*half], ws.sin[:n*half], s.e.m.RoPETheta, first, n, s.e.dh)
}

// rotate applies rotary positions (layerops' RoPE kernel, Hugging Face's
// rotate_half layout) to the queries and keys of the workspace's n rows,
// with the table ropeTable wrote for them: q holds rows of Heads·Dh
// values, k rows of KVHeads·Dh.
func (s *State) rotate(q, k []float32, n int) {
	e, m := s.e, s.e.m
	dh, half := e.dh, e.dh/2
	ws := &s.ws
	cos, sin := ws.cos[:n*half], ws.sin[:n*half]
	for _, x := range []struct {
		v     []float32
		width int
	}{{q, m.Heads * dh}, {k, m.KVHeads * dh}} {
		tmp := ws.rot[:x.width]
		for r := range n {
			row := x.v[r*x.width : (r+1)*x.width]
			// seq 1: every head of the row takes the table's row r.
			layerops.RoPERotate(tmp, row, cos[r*half:(r+1)*half], sin[r*half:(r+1)*half], 1, dh)
			copy(row, tmp)
		}
	}
}
