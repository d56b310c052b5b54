// Package quantize emulates low-precision number formats inside Gorgonia
// graphs: fake-quantization nodes (quantize and dequantize in one node,
// with a straight-through backward pass), the specs that describe them,
// observers that calibrate fixed scales, statistics captured at every run,
// and a learnable-scale (LSQ) variant for quantization-aware training.
//
// Formats: Int8, UInt8, Int4, UInt4 (affine grids, bit-exact with PyTorch's
// fake_quantize_per_tensor_affine and _per_channel_affine in float32), FP16,
// BF16, FP8E4M3 (E4M3FN) and FP8E5M2 (correctly rounded casts with
// subnormals; FP8 saturates as ONNX does by default). Granularities:
// PerTensor, PerChannel (any axis), PerGroup (GroupSize consecutive
// elements along the last axis, as int4 weight formats use) and PerRow (one
// scale per row along the last axis, whatever its length: per token, or per
// query row of attention scores). Scales are
// fixed (Spec.Scale, Spec.ZeroPoint) or dynamic, computed from the data at
// every run; see FakeQuant for the rules.
//
// A typical study:
//
//	var st quantize.Stats
//	y, err := quantize.FakeQuant(h, quantize.Spec{Format: quantize.Int8, Symmetric: true},
//		quantize.WithStats(&st))
//	// … run the graph …
//	fmt.Println(st.Snapshot()) // clipped %, zeroed %, NaN/Inf counts, SQNR
//
// Calibration: attach an Observer with WithObserver (or call Observe on
// values), run a few batches, then build the graph again with the Spec it
// returns. Passthrough is the identity with the same options, for a place
// to be watched or calibrated without being quantized.
//
// Errors at graph-build time wrap ErrSpec (a bad spec) or one of package
// ops' sentinels (ops.ErrNilNode, ops.ErrDtype, ops.ErrAxis, ops.ErrShape);
// nothing panics. Ops carry their parameters by value and keep no
// global state; Stats and Observer lock themselves, so graphs using them
// may run in many goroutines (one graph and machine per goroutine, as
// Gorgonia requires). FakeQuantSlice runs a FakeQuant node's code on
// plain slices. On amd64 with AVX2 the integer kernels run vector code
// (assembly in the default build, simd/archsimd with GOEXPERIMENT=simd)
// with the same results, bit for bit.
package quantize
