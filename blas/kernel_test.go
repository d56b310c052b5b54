package blas

import "testing"

// TestKernelChoice: the kernel chosen for a CPU is its widest vector
// kernel that this build has, and the portable one without AVX2 and FMA;
// every set ends with the portable kernel, which the tests run everywhere.
func TestKernelChoice(t *testing.T) {
	vector := buildKernels != "portable Go"
	for _, c := range []struct {
		avx2, avx512 bool
		want         string
	}{
		{false, false, "go"},
		{true, false, "avx2"},
		{false, true, "avx512"},
		{true, true, "avx512"},
	} {
		want := c.want
		if !vector {
			want = "go"
		}
		s32, s64 := cpuKernels32(c.avx2, c.avx512), cpuKernels64(c.avx2, c.avx512)
		if s32.best.name != want || s64.best.name != want {
			t.Errorf("avx2 %v, avx512 %v: kernels %s and %s, want %s", c.avx2, c.avx512, s32.best.name, s64.best.name, want)
		}
		if last := s32.all[len(s32.all)-1]; last.name != "go" {
			t.Errorf("avx2 %v, avx512 %v: last kernel %s, want go", c.avx2, c.avx512, last.name)
		}
	}
}
