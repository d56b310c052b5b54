//go:build amd64 && !purego

package cpupeak

import "golang.org/x/sys/cpu"

// fmaLoop returns the assembly loop (peak_amd64.s) for the width and type,
// with its flops per iteration, or nil when the CPU lacks it.
func fmaLoop(bits int, double bool) (func(n int), float64) {
	lanes := bits / 32
	if double {
		lanes = bits / 64
	}
	flops := float64(2 * lanes * accumulators)
	switch {
	case bits == 256 && cpu.X86.HasAVX2 && cpu.X86.HasFMA:
		if double {
			return fmaLoop64x4, flops
		}
		return fmaLoop32x8, flops
	case bits == 512 && cpu.X86.HasAVX512F:
		if double {
			return fmaLoop64x8, flops
		}
		return fmaLoop32x16, flops
	}
	return nil, 0
}

// accumulators is the number of FMAs per iteration of the loops.
const accumulators = 12
