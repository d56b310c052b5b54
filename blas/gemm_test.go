package blas

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"unsafe"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
	"gorgonia.org/gorgonia"
)

// Implementation is a drop-in BLAS for Gorgonia.
var _ gorgonia.BLAS = Implementation{}

// guard is the value around and between the rows of every matrix the
// tests pass: a NaN with a payload of its own, so that a write is seen
// (the bits change) and a read of it reaches the result (as NaN).
var guard64 = math.Float64frombits(0x7ff8_dead_beef_0001)

func guardValue[T float]() T {
	var z T
	if unsafe.Sizeof(z) == 4 {
		return T(math.Float32frombits(0x7fc0_beef))
	}
	return T(guard64)
}

func sameBits[T float](x, y T) bool {
	if unsafe.Sizeof(x) == 4 {
		return math.Float32bits(float32(x)) == math.Float32bits(float32(y))
	}
	return math.Float64bits(float64(x)) == math.Float64bits(float64(y))
}

// guardLen is the number of guard elements before and after a matrix.
const guardLen = 37

// guarded is a rows×cols matrix with leading dimension ld, inside a
// buffer whose other elements (guard bands, and the gaps between rows when
// ld > cols) hold the guard value.
type guarded[T float] struct {
	rows, cols, ld int
	buf            []T
}

// newGuarded returns a guarded matrix whose elements are fill(i, j).
func newGuarded[T float](rows, cols, ld int, fill func(i, j int) T) guarded[T] {
	g := guarded[T]{rows: rows, cols: cols, ld: ld}
	n := 0
	if rows > 0 && cols > 0 {
		n = (rows-1)*ld + cols
	}
	g.buf = make([]T, 2*guardLen+n)
	for i := range g.buf {
		g.buf[i] = guardValue[T]()
	}
	for i := range rows {
		for j := range cols {
			g.buf[guardLen+i*ld+j] = fill(i, j)
		}
	}
	return g
}

// data is the slice a BLAS call gets: exactly as long as the matrix needs.
func (g guarded[T]) data() []T { return g.buf[guardLen : len(g.buf)-guardLen] }

func (g guarded[T]) at(i, j int) T { return g.buf[guardLen+i*g.ld+j] }

// checkGuards reports every guard element that changed.
func (g guarded[T]) checkGuards(t *testing.T, name string) {
	t.Helper()
	inWindow := func(idx int) bool {
		idx -= guardLen
		if idx < 0 || g.rows == 0 || g.cols == 0 || idx >= (g.rows-1)*g.ld+g.cols {
			return false
		}
		return idx%g.ld < g.cols
	}
	bad := 0
	for idx, v := range g.buf {
		if !inWindow(idx) && !sameBits(v, guardValue[T]()) {
			if bad++; bad <= 3 {
				t.Errorf("%s: guard element %d (offset %d from the matrix) was written: %v", name, idx, idx-guardLen, v)
			}
		}
	}
}

// operands returns A (m×k, or k×m transposed), B (k×n or n×k) and C
// (m×n) as guarded matrices with leading dimensions padded by padA, padB
// and padC, filled by the given functions of (row, column) of op(A), op(B)
// and C.
func operands[T float](m, n, k int, tA, tB bool, padA, padB, padC int, fa, fb, fc func(i, j int) T) (a, b, c guarded[T]) {
	if tA {
		a = newGuarded(k, m, m+padA, func(i, j int) T { return fa(j, i) })
	} else {
		a = newGuarded(m, k, k+padA, fa)
	}
	if tB {
		b = newGuarded(n, k, k+padB, func(i, j int) T { return fb(j, i) })
	} else {
		b = newGuarded(k, n, n+padB, fb)
	}
	c = newGuarded(m, n, n+padC, fc)
	return a, b, c
}

// opAt is element (i, j) of op(X) for a guarded X.
func opAt[T float](x guarded[T], trans bool, i, j int) T {
	if trans {
		return x.at(j, i)
	}
	return x.at(i, j)
}

// reference returns the plain loop's C[i,j] = alpha·Σₚ A[i,p]·B[p,j] +
// beta·C[i,j] in float64 (exact for float32 data up to the last of 2⁻⁵³
// relative), with reference BLAS's special cases (beta = 0: C not read;
// alpha = 0 or k = 0: C = beta·C), and the scale of its rounding error,
// |alpha|·Σₚ|A[i,p]·B[p,j]| + |beta·C[i,j]|.
func reference[T float](m, n, k int, tA, tB bool, alpha T, a, b guarded[T], beta T, c guarded[T]) (want, scale []float64) {
	want, scale = make([]float64, m*n), make([]float64, m*n)
	// op(A)'s rows and op(B)'s columns, contiguous.
	ar, bc := make([]float64, m*k), make([]float64, n*k)
	for p := range k {
		for i := range m {
			ar[i*k+p] = float64(opAt(a, tA, i, p))
		}
		for j := range n {
			bc[j*k+p] = float64(opAt(b, tB, p, j))
		}
	}
	for i := range m {
		for j := range n {
			var s, abs float64
			if alpha != 0 {
				x, y := ar[i*k:(i+1)*k], bc[j*k:(j+1)*k]
				for p, v := range x {
					xy := v * y[p]
					s += xy
					abs += math.Abs(xy)
				}
			}
			w, e := float64(alpha)*s, math.Abs(float64(alpha))*abs
			if beta != 0 {
				w += float64(beta) * float64(c.at(i, j))
				e += math.Abs(float64(beta) * float64(c.at(i, j)))
			}
			want[i*n+j], scale[i*n+j] = w, e
		}
	}
	return want, scale
}

// unitRoundoff is 2⁻²⁴ for float32, 2⁻⁵³ for float64.
func unitRoundoff[T float]() float64 {
	var z T
	if unsafe.Sizeof(z) == 4 {
		return 0x1p-24
	}
	return 0x1p-53
}

// errorBound is the tolerance on C[i,j]: a sum of k products in any order,
// with or without FMA, is within γₖ·Σ|products| of the exact sum (Higham,
// Accuracy and Stability of Numerical Algorithms, 2nd ed., §3.1), and the
// scaling by alpha and the addition of beta·C add two more roundings:
// (k+3)·u·scale, plus the float64 reference's own error for float64 data.
func errorBound[T float](k int, scale float64) float64 {
	return float64(k+3)*unitRoundoff[T]()*scale + float64(k+3)*0x1p-53*scale
}

// checkResult compares the C window with want within errorBound (NaN must
// match NaN, an infinity the same infinity) and checks C's guards.
func checkResult[T float](t *testing.T, name string, k int, c guarded[T], want, scale []float64) {
	t.Helper()
	bad := 0
	for i := range c.rows {
		for j := range c.cols {
			got, w := float64(c.at(i, j)), want[i*c.cols+j]
			ok := false
			switch {
			case math.IsNaN(w) || math.IsNaN(got):
				ok = math.IsNaN(w) && math.IsNaN(got)
			case math.IsInf(w, 0) || math.IsInf(got, 0):
				ok = got == w
			default:
				ok = math.Abs(got-w) <= errorBound[T](k, scale[i*c.cols+j])
			}
			if !ok {
				if bad++; bad <= 3 {
					t.Errorf("%s: C[%d,%d] = %v, want %v (tolerance %.3g)", name, i, j, got, w, errorBound[T](k, scale[i*c.cols+j]))
				}
			}
		}
	}
	c.checkGuards(t, name)
}

// gemmCase is one product.
type gemmCase struct {
	m, n, k          int
	tA, tB           bool
	padA, padB, padC int
	alpha, beta      float64
}

func (tc gemmCase) String() string {
	t := func(b bool) string {
		if b {
			return "T"
		}
		return "N"
	}
	return fmt.Sprintf("%dx%dx%d/%s%s/pad%d,%d,%d/alpha=%g/beta=%g", tc.m, tc.n, tc.k, t(tc.tA), t(tc.tB), tc.padA, tc.padB, tc.padC, tc.alpha, tc.beta)
}

// mode is one way of running a product: the path run chooses for procs
// threads, or blocked with packing of B and threads forced.
type mode struct {
	name    string
	procs   int  // run(procs), when forced is false
	forced  bool // blocked(packB, threads)
	packB   bool
	threads int
}

var modes = []mode{
	{name: "run1", procs: 1},
	{name: "run3", procs: 3},
	{name: "packed1", forced: true, packB: true, threads: 1},
	{name: "packed3", forced: true, packB: true, threads: 3},
	{name: "direct1", forced: true, packB: false, threads: 1},
	{name: "direct2", forced: true, packB: false, threads: 2},
}

// runMode computes tc on c with kern in mode md; it reports false for a
// mode that does not apply (direct needs B's rows contiguous).
func runMode[T float](kern *kernel[T], md mode, tc gemmCase, a, b, c guarded[T]) bool {
	op := newGemmOp(checked(kern), tc.tA, tc.tB, tc.m, tc.n, tc.k, T(tc.alpha), a.data(), a.ld, b.data(), b.ld, T(tc.beta), c.data(), c.ld)
	switch {
	case !md.forced:
		op.run(md.procs)
	case !md.packB && tc.tB:
		return false
	case op.alpha == 0 || op.k == 0:
		op.scaleC()
	default:
		op.blocked(md.packB, md.threads)
	}
	return true
}

// checked returns kern with a run that first panics unless the slices it
// gets hold every element the kernel reads or writes: the assembly and
// archsimd kernels do not check.
func checked[T float](kern *kernel[T]) *kernel[T] {
	kc := *kern
	kc.run = func(k int, a []T, rsA, csA int, b []T, rsB int, c []T, ldc int, alpha, beta T) {
		if k < 1 || len(a) < (kern.mr-1)*rsA+(k-1)*csA+1 || len(b) < (k-1)*rsB+kern.nr || len(c) < (kern.mr-1)*ldc+kern.nr {
			panic(fmt.Sprintf("%s: k %d, len(a) %d (rsA %d, csA %d), len(b) %d (rsB %d), len(c) %d (ldc %d)",
				kern.name, k, len(a), rsA, csA, len(b), rsB, len(c), ldc))
		}
		kern.run(k, a, rsA, csA, b, rsB, c, ldc, alpha, beta)
	}
	return &kc
}

// randFill returns a function filling a matrix with uniform values in
// [−1, 1), from its own generator.
func randFill[T float](seed uint64) func(i, j int) T {
	rng := rand.New(rand.NewPCG(seed, 7))
	return func(int, int) T { return T(rng.Float64()*2 - 1) }
}

// testCases runs every case with every kernel in every mode, checks each
// result against the float64 plain loop, and checks that the modes of a
// kernel agree bit for bit (each element of C is summed in the same order
// whatever the threads and packing).
func testCases[T float](t *testing.T, kernels []kernel[T], cases []gemmCase) {
	for ci, tc := range cases {
		a, b, c0 := operands[T](tc.m, tc.n, tc.k, tc.tA, tc.tB, tc.padA, tc.padB, tc.padC,
			randFill[T](uint64(3*ci)), randFill[T](uint64(3*ci+1)), randFill[T](uint64(3*ci+2)))
		want, scale := reference(tc.m, tc.n, tc.k, tc.tA, tc.tB, T(tc.alpha), a, b, T(tc.beta), c0)
		firsts := map[string][]T{} // each kernel's first result
		eachRun(kernels, tc, a, b, c0, func(kern, name string, c guarded[T]) {
			checkResult(t, name, tc.k, c, want, scale)
			a.checkGuards(t, name+": A")
			b.checkGuards(t, name+": B")
			first, ok := firsts[kern]
			if !ok {
				firsts[kern] = c.buf
				return
			}
			for i := range first {
				if !sameBits(first[i], c.buf[i]) {
					t.Errorf("%s: element %d is %v, %v in the first mode", name, i-guardLen, c.buf[i], first[i])
					break
				}
			}
		})
		if t.Failed() {
			return
		}
	}
}

// eachRun runs tc with every kernel of ks (each wrapped in checked) in
// every mode that applies, each time on a fresh copy of c0, and calls
// check with the kernel's name, a name for the run and its C.
func eachRun[T float](ks []kernel[T], tc gemmCase, a, b, c0 guarded[T], check func(kern, name string, c guarded[T])) {
	for ki := range ks {
		for _, md := range modes {
			c := guarded[T]{rows: c0.rows, cols: c0.cols, ld: c0.ld, buf: slices.Clone(c0.buf)}
			if runMode(&ks[ki], md, tc, a, b, c) {
				check(ks[ki].name, fmt.Sprintf("%s/%s/%v", ks[ki].name, md.name, tc), c)
			}
		}
	}
}

// edgeCases are the shapes around a kernel's blocks: m, n and k one below,
// at and one above mr, nr and kc, and a few small ones.
func edgeCases(mr, nr, kc int) []gemmCase {
	var cases []gemmCase
	i := 0
	for _, m := range []int{1, mr - 1, mr, mr + 1, 2*mr + 1} {
		for _, n := range []int{1, nr - 1, nr, nr + 1, 2*nr + 3} {
			for _, k := range []int{1, 2, 5, kc + 1} {
				if m < 1 || n < 1 {
					continue
				}
				i++
				cases = append(cases, gemmCase{m: m, n: n, k: k, tA: i%2 == 1, tB: i%3 == 1, padA: i % 3, padB: i % 4, padC: i % 5,
					alpha: []float64{1, -0.75, 2}[i%3], beta: []float64{0, 1, -0.5, 1.25}[i%4]})
			}
		}
	}
	return cases
}

// randomCases are n shapes from 1 to maxDim, every transpose, padded
// leading dimensions and a mix of alpha and beta, 0 included.
func randomCases(n, maxDim int, seed uint64) []gemmCase {
	rng := rand.New(rand.NewPCG(seed, 11))
	alphas := []float64{1, -1, 0.5, 2.25, 0}
	betas := []float64{0, 1, -1.5, 0.5, 0}
	cases := make([]gemmCase, n)
	for i := range cases {
		cases[i] = gemmCase{
			m: 1 + rng.IntN(maxDim), n: 1 + rng.IntN(maxDim), k: 1 + rng.IntN(maxDim),
			tA: i&1 == 1, tB: i&2 == 2,
			padA: rng.IntN(3) * rng.IntN(9), padB: rng.IntN(3) * rng.IntN(9), padC: rng.IntN(3) * rng.IntN(9),
			alpha: alphas[rng.IntN(len(alphas))], beta: betas[rng.IntN(len(betas))],
		}
	}
	return cases
}

// largeCases cross a kernel's cache blocks mc and kc, the direct path's
// size and the threading threshold, in every transpose, and reach packing
// a transposed A. (shrunk covers nc and every block boundary many times
// over on small products.)
func largeCases(mr, nr, kc, mc int) []gemmCase {
	var cases []gemmCase
	for i, s := range [][3]int{
		{mc + mr + 1, 2*nr + 1, kc + 5},             // mc and kc, m·n·k past directMax
		{200, 130, 170},                             // past threadMin·2: 2 and 3 threads
		{140, 150, 100},                             // between directMax and two threads
		{3*mr + 1, packTransAMinSlivers*nr + 1, 50}, // A transposed is packed (packTransA)
	} {
		trs := []int{i % 4, (i + 2) % 4}
		if i == 3 {
			trs = []int{1, 3} // A transposed
		}
		for _, tr := range trs {
			cases = append(cases, gemmCase{m: s[0], n: s[1], k: s[2], tA: tr&1 == 1, tB: tr&2 == 2,
				padA: i, padB: tr, padC: 1, alpha: 1.5, beta: []float64{0, 0.5}[(i+tr)%2]})
		}
	}
	return cases
}

// shrunk is kern with tiny cache blocks (kc odd, so that the kernel's
// loop has a remainder), so that small products cross every block
// boundary, nc's included, several times.
func shrunk[T float](kern kernel[T]) kernel[T] {
	kern.name += "-shrunk"
	kern.kc, kern.mc, kern.nc = 7, 2*kern.mr, 3*kern.nr
	return kern
}

// testGemmShapes runs edgeCases for each kernel's blocks and randomCases on
// every kernel of set, and largeCases for each kernel's blocks, and small
// random products with its blocks shrunk, on that kernel.
func testGemmShapes[T float](t *testing.T, set kernelSet[T]) {
	for _, kern := range set.all {
		t.Run("edges/"+kern.name, func(t *testing.T) {
			testCases(t, set.all, edgeCases(kern.mr, kern.nr, kern.kc))
		})
		t.Run("shrunk/"+kern.name, func(t *testing.T) {
			testCases(t, []kernel[T]{shrunk(kern)}, randomCases(16, 70, 3))
		})
		t.Run("large/"+kern.name, func(t *testing.T) {
			if testing.Short() {
				t.Skip("large products")
			}
			testCases(t, []kernel[T]{kern}, largeCases(kern.mr, kern.nr, kern.kc, kern.mc))
		})
	}
	t.Run("random", func(t *testing.T) { testCases(t, set.all, randomCases(30, 160, 1)) })
}

func TestSgemmShapes(t *testing.T) { testGemmShapes(t, kernels32) }
func TestDgemmShapes(t *testing.T) { testGemmShapes(t, kernels64) }

// TestGemmVsGonum compares Implementation's Sgemm and Dgemm with gonum's on
// random shapes, every transpose and padded leading dimensions: both are
// within errorBound of the exact product, so within twice of each other.
func TestGemmVsGonum(t *testing.T) {
	for ci, tc := range randomCases(30, 150, 2) {
		a, b, c0 := operands[float32](tc.m, tc.n, tc.k, tc.tA, tc.tB, tc.padA, tc.padB, tc.padC, randFill[float32](uint64(ci)), randFill[float32](uint64(ci+100)), randFill[float32](uint64(ci+200)))
		_, scale := reference(tc.m, tc.n, tc.k, tc.tA, tc.tB, float32(tc.alpha), a, b, float32(tc.beta), c0)
		ours, theirs := slices.Clone(c0.buf), slices.Clone(c0.buf)
		tA, tB := transpose(tc.tA), transpose(tc.tB)
		Implementation{}.Sgemm(tA, tB, tc.m, tc.n, tc.k, float32(tc.alpha), a.data(), a.ld, b.data(), b.ld, float32(tc.beta), ours[guardLen:len(ours)-guardLen], c0.ld)
		gonum.Implementation{}.Sgemm(tA, tB, tc.m, tc.n, tc.k, float32(tc.alpha), a.data(), a.ld, b.data(), b.ld, float32(tc.beta), theirs[guardLen:len(theirs)-guardLen], c0.ld)
		compareWith(t, "Sgemm "+tc.String(), tc.k, c0, ours, theirs, scale)

		a64, b64, c64 := operands[float64](tc.m, tc.n, tc.k, tc.tA, tc.tB, tc.padA, tc.padB, tc.padC, randFill[float64](uint64(ci)), randFill[float64](uint64(ci+100)), randFill[float64](uint64(ci+200)))
		_, scale = reference(tc.m, tc.n, tc.k, tc.tA, tc.tB, tc.alpha, a64, b64, tc.beta, c64)
		ours64, theirs64 := slices.Clone(c64.buf), slices.Clone(c64.buf)
		Implementation{}.Dgemm(tA, tB, tc.m, tc.n, tc.k, tc.alpha, a64.data(), a64.ld, b64.data(), b64.ld, tc.beta, ours64[guardLen:len(ours64)-guardLen], c64.ld)
		gonum.Implementation{}.Dgemm(tA, tB, tc.m, tc.n, tc.k, tc.alpha, a64.data(), a64.ld, b64.data(), b64.ld, tc.beta, theirs64[guardLen:len(theirs64)-guardLen], c64.ld)
		compareWith(t, "Dgemm "+tc.String(), tc.k, c64, ours64, theirs64, scale)
	}
}

// compareWith checks ours against theirs (two buffers laid out as c) within
// twice errorBound, and that ours kept c's guards.
func compareWith[T float](t *testing.T, name string, k int, c guarded[T], ours, theirs []T, scale []float64) {
	t.Helper()
	g := guarded[T]{rows: c.rows, cols: c.cols, ld: c.ld, buf: ours}
	g.checkGuards(t, name)
	for i := range c.rows {
		for j := range c.cols {
			x, y := float64(ours[guardLen+i*c.ld+j]), float64(theirs[guardLen+i*c.ld+j])
			if tol := 2 * errorBound[T](k, scale[i*c.cols+j]); !(math.Abs(x-y) <= tol) {
				t.Errorf("%s: C[%d,%d] = %v, gonum %v (tolerance %.3g)", name, i, j, x, y, tol)
				return
			}
		}
	}
}

func transpose(t bool) blas.Transpose {
	if t {
		return blas.Trans
	}
	return blas.NoTrans
}
