package main

import (
	"fmt"
	"math"
	"runtime"
	"strconv"
	"strings"
	"time"

	actqblas "github.com/actq/actq/blas"
	"github.com/actq/actq/internal/cpupeak"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// The gemm op's shapes, m×k×n (C = A·B with A m×k and B k×n; a trailing
// t: B is given as n×k and transposed, as attention's Q·Kᵀ): the four
// of actq's speed target, then attention-like products (seq×Dh×seq).
const (
	defaultGEMM = "2048x128x512,2048x512x128,512x512x512,1024x1024x1024,128x32x128,128x32x128t,512x64x512,512x64x512t"
	quickGEMM   = "256x64x256,128x32x128t"
)

// gemmShape is one product of the gemm op.
type gemmShape struct {
	m, k, n int
	bTrans  bool
}

func (s gemmShape) String() string {
	t := ""
	if s.bTrans {
		t = "t"
	}
	return fmt.Sprintf("%dx%dx%d%s", s.m, s.k, s.n, t)
}

func parseGEMM(spec string) ([]gemmShape, error) {
	var shapes []gemmShape
	for _, f := range strings.Split(spec, ",") {
		var s gemmShape
		f, s.bTrans = strings.CutSuffix(f, "t")
		dims := strings.Split(f, "x")
		if len(dims) != 3 {
			return nil, fmt.Errorf("bad gemm shape %q: want m×k×n, e.g. 512x64x512", f)
		}
		var err error
		for i, p := range []*int{&s.m, &s.k, &s.n} {
			if *p, err = strconv.Atoi(dims[i]); err != nil || *p < 1 {
				return nil, fmt.Errorf("bad gemm shape %q: dimension %q", f, dims[i])
			}
		}
		shapes = append(shapes, s)
	}
	return shapes, nil
}

// fmaPeak measures one core's float32 FMA peak, in flop/s, the better of
// the 256- and 512-bit loops (on cores that split 512-bit FMAs in two,
// both give the same), and names the width; 0 when this build or CPU has
// no loop.
func fmaPeak() (float64, string) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	best, name := 0.0, ""
	for _, bits := range []int{256, 512} {
		if r := cpupeak.FMA(bits, false, 7, 20*time.Millisecond); r.OK && r.FlopsPerSec > best {
			best, name = r.FlopsPerSec, fmt.Sprintf("%d-bit", bits)
		}
	}
	return best, name
}

// benchGEMM times float32 C = A·B for each shape and thread count: actq's
// Sgemm, gonum's, and PyTorch's matmul, their samples interleaved. It
// prints the best of the samples (on a shared machine, other processes
// only ever slow a product down) in GFLOPS, the ratio actq/torch and each
// figure as a fraction of the measured FMA peak times the threads.
func benchGEMM(c config, torch *torchServer) {
	shapes, err := parseGEMM(c.gemm)
	if err != nil {
		fatalf("%v", err)
	}
	peak, width := fmaPeak()
	fmt.Printf("\n## gemm, float32 C = A·B (m×k×n; t: B transposed), GFLOPS, best of %d samples\n\n", c.count)
	if peak > 0 {
		fmt.Printf("FMA peak (one core, %s FMA loop, best of 7): %.1f GFLOPS; the peak columns divide by it times the threads.\n\n", width, peak/1e9)
	} else {
		fmt.Println("FMA peak: not measured (no FMA loop in this build or CPU).")
		fmt.Println()
	}
	fmt.Println("| m×k×n | threads | actq | gonum | torch | actq/torch | actq/peak | gonum/peak | torch/peak |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	for _, s := range shapes {
		a, b := gemmInput(s.m*s.k, 1), gemmInput(s.k*s.n, 2)
		dst := make([]float32, s.m*s.n)
		lda, ldb, tB := s.k, s.n, blas.NoTrans
		if s.bTrans {
			ldb, tB = s.k, blas.Trans
		}
		flops := 2 * float64(s.m) * float64(s.n) * float64(s.k)
		for _, threads := range c.threads {
			runtime.GOMAXPROCS(threads)
			vs := []variant{
				{name: "actq", run: func() error {
					actqblas.Implementation{}.Sgemm(blas.NoTrans, tB, s.m, s.n, s.k, 1, a, lda, b, ldb, 0, dst, s.n)
					return nil
				}},
				{name: "gonum", run: func() error {
					gonum.Implementation{}.Sgemm(blas.NoTrans, tB, s.m, s.n, s.k, 1, a, lda, b, ldb, 0, dst, s.n)
					return nil
				}},
			}
			if torch != nil {
				op := "matmul"
				if s.bTrans {
					op = "matmul_nt"
				}
				vs = append(vs, torch.variant(op, []int{s.m, s.k, s.n}, threads, "fwd"))
			}
			ns := measure(c, vs, best)
			gflops := func(name string) float64 { return flops / byName(vs, ns, name) }
			frac := func(g float64) string {
				if peak == 0 || math.IsNaN(g) {
					return "—"
				}
				return strconv.FormatFloat(g*1e9/(peak*float64(threads)), 'f', 2, 64)
			}
			act, gon, tor := gflops("actq"), gflops("gonum"), gflops("torch")
			fmt.Printf("| %v | %d | %s | %s | %s | %s | %s | %s | %s |\n", s, threads,
				gnum(act), gnum(gon), gnum(tor), ratio(act, tor), frac(act), frac(gon), frac(tor))
		}
	}
}

// gemmInput is n values in [−1, 1]: sin of a multiple of the index (no
// subnormals, which would slow the products down).
func gemmInput(n int, seed float64) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(math.Sin(float64(i)*0.618 + seed))
	}
	return x
}

func gnum(v float64) string {
	if math.IsNaN(v) {
		return "—"
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}
