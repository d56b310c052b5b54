package blas

import (
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// specialShapes cover the direct and the packed path, full and partial
// blocks.
var specialShapes = [][3]int{{1, 1, 1}, {7, 19, 5}, {13, 33, 40}, {40, 70, 300}}

// TestGemmBetaZero: with beta = 0, C is not read: NaN and ±Inf already in
// C do not reach the result.
func TestGemmBetaZero(t *testing.T) {
	testBetaZero[float32](t, kernels32)
	testBetaZero[float64](t, kernels64)
}

func testBetaZero[T float](t *testing.T, set kernelSet[T]) {
	inf := T(math.Inf(1))
	for si, s := range specialShapes {
		tc := gemmCase{m: s[0], n: s[1], k: s[2], tA: si%2 == 1, tB: si >= 2, padC: 3, alpha: 1.5, beta: 0}
		a, b, c0 := operands(tc.m, tc.n, tc.k, tc.tA, tc.tB, 0, 1, tc.padC, randFill[T](1), randFill[T](2),
			func(i, j int) T { return []T{T(math.NaN()), inf, -inf}[(i+j)%3] })
		want, scale := reference(tc.m, tc.n, tc.k, tc.tA, tc.tB, T(tc.alpha), a, b, 0, c0)
		eachRun(set.all, tc, a, b, c0, func(_, name string, c guarded[T]) { checkResult(t, name, tc.k, c, want, scale) })
	}
}

// TestGemmAlphaZero: with alpha = 0 or k = 0, A and B are not read (NaN in
// them does not propagate) and C = beta·C exactly; with beta = 0 as well,
// C = +0 even where it held NaN.
func TestGemmAlphaZero(t *testing.T) {
	testAlphaZero[float32](t, kernels32)
	testAlphaZero[float64](t, kernels64)
}

func testAlphaZero[T float](t *testing.T, set kernelSet[T]) {
	nan := T(math.NaN())
	for _, s := range specialShapes {
		for _, ab := range [][2]float64{{0, 0}, {0, 1}, {0, -2.5}, {1, 0}, {1, 0.75}} {
			alpha, beta, k := T(ab[0]), T(ab[1]), s[2]
			if alpha != 0 {
				k = 0
			}
			tc := gemmCase{m: s[0], n: s[1], k: k, padC: 2, alpha: float64(alpha), beta: float64(beta)}
			a, b, c0 := operands(tc.m, tc.n, max(k, 1), false, false, 0, 0, tc.padC,
				func(int, int) T { return nan }, func(int, int) T { return nan },
				func(i, j int) T { return []T{nan, 1.5, -3, 0}[(i+j)%4] })
			eachRun(set.all, tc, a, b, c0, func(_, name string, c guarded[T]) {
				c.checkGuards(t, name)
				for i := range tc.m {
					for j := range tc.n {
						want := beta * c0.at(i, j)
						if beta == 0 {
							want = 0
						}
						if got := c.at(i, j); !sameBits(got, want) {
							t.Fatalf("%s: C[%d,%d] = %v, want %v", name, i, j, got, want)
						}
					}
				}
			})
		}
	}
}

// TestGemmNaNInf: NaN and ±Inf in A or B propagate as in the plain loop,
// also through a zero factor (0·Inf = NaN; gonum skips a zero element of A)
// and to +Inf + −Inf = NaN.
func TestGemmNaNInf(t *testing.T) {
	testNaNInf[float32](t, kernels32)
	testNaNInf[float64](t, kernels64)
}

func testNaNInf[T float](t *testing.T, set kernelSet[T]) {
	nan, inf := T(math.NaN()), T(math.Inf(1))
	for si, s := range specialShapes[1:] {
		m, n, k := s[0], s[1], s[2]
		for tr := range 4 {
			tc := gemmCase{m: m, n: n, k: k, tA: tr&1 == 1, tB: tr&2 == 2, padA: 1, padB: 2, padC: 1, alpha: -1.25, beta: []float64{0, 0.5}[si%2]}
			fa := randFill[T](uint64(tr))
			fb := randFill[T](uint64(tr + 9))
			a, b, c0 := operands(m, n, k, tc.tA, tc.tB, tc.padA, tc.padB, tc.padC,
				func(i, j int) T {
					switch {
					case i == 0 && j == k-1:
						return nan // row 0 of C: NaN
					case i == m-1 && j == 0:
						return 0 // 0·Inf below: C[m−1, n−1] NaN
					case i == m/2 && j == k/2:
						return inf // row m/2: ±Inf, NaN where it meets −Inf
					}
					return fa(i, j)
				},
				func(i, j int) T {
					switch {
					case i == 0 && j == n-1:
						return inf
					case i == k/2 && j == n/2:
						return -inf
					}
					return fb(i, j)
				},
				randFill[T](5))
			want, scale := reference(m, n, k, tc.tA, tc.tB, T(tc.alpha), a, b, T(tc.beta), c0)
			eachRun(set.all, tc, a, b, c0, func(_, name string, c guarded[T]) { checkResult(t, name, k, c, want, scale) })
		}
	}
}

// gemmArgs is one call's arguments.
type gemmArgs struct {
	name      string
	tA, tB    blas.Transpose
	m, n, k   int
	lenA, lda int
	lenB, ldb int
	lenC, ldc int
}

// TestGemmPanics: bad arguments panic exactly as gonum's Sgemm and Dgemm
// do, with the same message, also when several are bad at once; and calls
// gonum accepts do not panic.
func TestGemmPanics(t *testing.T) {
	ok := gemmArgs{tA: blas.NoTrans, tB: blas.NoTrans, m: 3, n: 4, k: 5, lenA: 15, lda: 5, lenB: 20, ldb: 4, lenC: 12, ldc: 4}
	var cases []gemmArgs
	add := func(name string, f func(*gemmArgs)) {
		c := ok
		c.name = name
		f(&c)
		cases = append(cases, c)
	}
	add("valid", func(*gemmArgs) {})
	add("tA", func(c *gemmArgs) { c.tA = 'X' })
	add("tB", func(c *gemmArgs) { c.tB = 0 })
	add("tA and m", func(c *gemmArgs) { c.tA, c.m = 'X', -1 })
	add("m<0", func(c *gemmArgs) { c.m = -1 })
	add("n<0", func(c *gemmArgs) { c.n = -1 })
	add("k<0", func(c *gemmArgs) { c.k = -1 })
	add("m<0 and n<0", func(c *gemmArgs) { c.m, c.n = -1, -1 })
	add("lda<k", func(c *gemmArgs) { c.lda = 4 })
	add("lda<m transposed", func(c *gemmArgs) { c.tA, c.lda, c.lenA = blas.Trans, 2, 30 })
	add("lda=0 k=0", func(c *gemmArgs) { c.k, c.lda = 0, 0 })
	add("ldb<n", func(c *gemmArgs) { c.ldb = 3 })
	add("ldb<k transposed", func(c *gemmArgs) { c.tB, c.ldb = blas.ConjTrans, 4 })
	add("ldc<n", func(c *gemmArgs) { c.ldc = 3 })
	add("ldc<n and short a", func(c *gemmArgs) { c.ldc, c.lenA = 3, 1 })
	add("short a", func(c *gemmArgs) { c.lenA = 14 })
	add("short a transposed", func(c *gemmArgs) { c.tA, c.lda, c.lenA = blas.Trans, 3, 14 })
	add("short b", func(c *gemmArgs) { c.lenB = 19 })
	add("short b transposed", func(c *gemmArgs) { c.tB, c.ldb, c.lenB = blas.Trans, 5, 19 })
	add("short c", func(c *gemmArgs) { c.lenC = 11 })
	add("short a and c", func(c *gemmArgs) { c.lenA, c.lenC = 0, 0 })
	add("m=0 short everything", func(c *gemmArgs) { c.m, c.lenA, c.lenB, c.lenC = 0, 0, 0, 0 })
	add("n=0 short everything", func(c *gemmArgs) { c.n, c.lenA, c.lenB, c.lenC = 0, 0, 0, 0 })
	add("k=0 short a", func(c *gemmArgs) { c.k, c.lenA, c.lenB = 0, 0, 0 })
	add("k=0 m=1", func(c *gemmArgs) { c.k, c.m, c.lda, c.lenA, c.lenB, c.lenC = 0, 1, 1, 0, 0, 4 })
	add("big lds", func(c *gemmArgs) { c.lda, c.ldb, c.ldc, c.lenA, c.lenB, c.lenC = 9, 7, 6, 23, 32, 16 })
	for _, c := range cases {
		for _, impl := range []string{"Sgemm", "Dgemm"} {
			ours := panicOf(func() { callGemm(Implementation{}, impl, c) })
			theirs := panicOf(func() { callGemm(gonum.Implementation{}, impl, c) })
			if ours != theirs {
				t.Errorf("%s %s: panic %q, gonum's %q", impl, c.name, ours, theirs)
			}
			if c.name == "valid" && ours != "" {
				t.Errorf("%s valid: panic %q", impl, ours)
			}
		}
	}
}

// gemmer is what TestGemmPanics calls on both implementations.
type gemmer interface {
	Sgemm(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)
	Dgemm(tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int)
}

func callGemm(g gemmer, which string, c gemmArgs) {
	if which == "Sgemm" {
		g.Sgemm(c.tA, c.tB, c.m, c.n, c.k, 1, make([]float32, c.lenA), c.lda, make([]float32, c.lenB), c.ldb, 0.5, make([]float32, c.lenC), c.ldc)
		return
	}
	g.Dgemm(c.tA, c.tB, c.m, c.n, c.k, 1, make([]float64, c.lenA), c.lda, make([]float64, c.lenB), c.ldb, 0.5, make([]float64, c.lenC), c.ldc)
}

// panicOf returns the panic value of f as a string, "" if none.
func panicOf(f func()) (msg string) {
	defer func() {
		if r := recover(); r != nil {
			msg = fmt.Sprint(r)
		}
	}()
	f()
	return ""
}

// TestGemmAllocs: a call allocates nothing in steady state (its buffers
// come from a pool), except one closure for each goroutine beyond the
// first that a large product starts.
func TestGemmAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	for _, s := range [][3]int{{8, 8, 8}, {64, 64, 32}, {200, 200, 200}} {
		m, n, k := s[0], s[1], s[2]
		a, b, c := make([]float32, m*k), make([]float32, k*n), make([]float32, m*n)
		for _, tB := range []bool{false, true} {
			kern := &kernels32.best
			run := func(threads int) func() {
				return func() {
					op := newGemmOp(kern, false, tB, m, n, k, 1, a, k, b, map[bool]int{false: n, true: k}[tB], 0, c, n)
					op.run(threads)
				}
			}
			if got := testing.AllocsPerRun(20, run(1)); got != 0 {
				t.Errorf("%v tB=%v, 1 thread: %v allocations per call", s, tB, got)
			}
			threads := min(2, max(1, m*n*k/threadMin))
			if got := testing.AllocsPerRun(20, run(2)); got > float64(threads-1) {
				t.Errorf("%v tB=%v, %d threads: %v allocations per call", s, tB, threads, got)
			}
		}
	}
	a := make([]float64, 100*100)
	if got := testing.AllocsPerRun(20, func() {
		Implementation{}.Dgemm(blas.Trans, blas.NoTrans, 100, 100, 100, 1, a, 100, a, 100, 1, a, 100)
	}); got != 0 {
		t.Errorf("Dgemm: %v allocations per call", got)
	}
}

// TestGemmConcurrent: many goroutines multiplying at once, each with its
// own C, get the results of the same calls made one at a time.
func TestGemmConcurrent(t *testing.T) {
	shapes := [][3]int{{5, 7, 3}, {40, 33, 60}, {130, 90, 200}}
	want := make([][]float32, len(shapes))
	args := make([][2][]float32, len(shapes))
	for i, s := range shapes {
		m, n, k := s[0], s[1], s[2]
		args[i] = [2][]float32{randSlice32New(uint64(i), m*k), randSlice32New(uint64(i+50), k*n)}
		want[i] = make([]float32, m*n)
		Implementation{}.Sgemm(blas.NoTrans, blas.NoTrans, m, n, k, 1, args[i][0], k, args[i][1], n, 0, want[i], n)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for g := range 2 * runtime.GOMAXPROCS(0) * 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range 5 {
				i := (g + r) % len(shapes)
				m, n, k := shapes[i][0], shapes[i][1], shapes[i][2]
				c := make([]float32, m*n)
				Implementation{}.Sgemm(blas.NoTrans, blas.NoTrans, m, n, k, 1, args[i][0], k, args[i][1], n, 0, c, n)
				if !slices.Equal(c, want[i]) {
					errs <- fmt.Sprintf("goroutine %d: %v differs", g, shapes[i])
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func randSlice32New(seed uint64, n int) []float32 {
	f := randFill[float32](seed)
	s := make([]float32, n)
	for i := range s {
		s[i] = f(0, 0)
	}
	return s
}
