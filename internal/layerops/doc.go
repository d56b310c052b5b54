// Package layerops holds the Gorgonia ops of actq's transformer layers
// (package graph): a fused RMSNorm and LayerNorm, a batched matrix product
// that calls GEMM once per matrix, the moves of attention heads between the
// row and the per-head layouts, rotary position embeddings (RoPE), a
// transpose of the last two axes, and a reshape that copies.
//
// Their Gorgonia plumbing (data access, shape checks, hashing, gradients on
// both machines) goes through internal/opkit; the numeric loops are plain
// generic functions over slices, in the *_kernel.go files and gemm.go.
package layerops
