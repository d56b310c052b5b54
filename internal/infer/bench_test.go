package infer

import (
	"fmt"
	"testing"

	actqblas "github.com/actq/actq/blas"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// BenchmarkRowProduct times the one-row products of decoding (x·W for
// the shapes of bench's llama-512 model) with the routines matmul could
// use: gonum's Sgemv on W (in, out) (an axpy of W's rows), gonum's Sgemv
// on Wᵀ (dot products with its rows, ProductsFast) and actq's Sgemm with
// one row (ProductsGraph). Forty matrices are cycled, 58–330 MB, so that they come
// from memory as a decoding step's weights do; MB/s counts the matrix.
func BenchmarkRowProduct(b *testing.B) {
	for _, s := range [][2]int{{512, 1408}, {1408, 512}, {512, 4096}} {
		k, n := s[0], s[1]
		const count = 40
		ws := make([][]float32, count)
		for j := range ws {
			ws[j] = make([]float32, k*n)
			for i := range ws[j] {
				ws[j][i] = float32(i%7) * 0.1
			}
		}
		x, y := make([]float32, k), make([]float32, n)
		for i := range x {
			x[i] = 0.3
		}
		for _, r := range []struct {
			name string
			run  func(w []float32)
		}{
			{"gonum-axpy", func(w []float32) { gonum.Implementation{}.Sgemv(blas.Trans, k, n, 1, w, n, x, 1, 0, y, 1) }},
			{"gonum-dot", func(w []float32) { gonum.Implementation{}.Sgemv(blas.NoTrans, n, k, 1, w, k, x, 1, 0, y, 1) }},
			{"actq-sgemm", func(w []float32) {
				actqblas.Implementation{}.Sgemm(blas.NoTrans, blas.NoTrans, 1, n, k, 1, x, k, w, n, 0, y, n)
			}},
		} {
			b.Run(fmt.Sprintf("%s/%dx%d", r.name, k, n), func(b *testing.B) {
				b.SetBytes(int64(4 * k * n))
				i := 0
				for b.Loop() {
					r.run(ws[i%count])
					i++
				}
			})
		}
	}
}

// BenchmarkPrefill times a prefill of 4096 tokens through a small RoPE
// model (2 layers, 4 heads of 32, 2 KV heads), where attention over the
// cache dominates, in each attention arithmetic.
func BenchmarkPrefill(b *testing.B) {
	sh := shape{name: "long", vocab: 64, d: 128, heads: 4, kv: 2, hidden: 256, layers: 2, act: "silu", gated: true, theta: 10000}
	m := randomModel(sh, 1)
	tokens := randomTokens(4096, sh.vocab, 2)
	out := make([]float32, sh.vocab)
	for _, a := range []Arithmetic{{}, {ScoresFP16: true}, {PV: PVHalf}} {
		name := a.PV.String()
		if a.ScoresFP16 {
			name = "scores-fp16"
		}
		b.Run(name, func(b *testing.B) {
			s := mustEngine(b, m, Options{Attention: a}).NewState(len(tokens))
			for b.Loop() {
				s.Reset()
				if err := s.Forward(tokens, out, []int{len(tokens) - 1}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
