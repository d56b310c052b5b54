// Package layerops holds the Gorgonia ops of actq's transformer layers
// (package graph): a matrix product with a fused bias (MatMul) and a
// batched one that calls GEMM once per matrix (BMM, ScaledBMM), both on
// actq's GEMM (package blas), with causal variants that skip the tiles
// above the diagonal; a fused RMSNorm and LayerNorm; the causal mask and
// causal softmax of attention scores; the moves of attention heads between
// the row and the per-head layouts; rotary position embeddings (RoPE); a
// transpose of the last two axes; a reshape that copies; and the
// cross-entropy of logits against target indices (CrossEntropy).
//
// Their Gorgonia plumbing (data access, shape checks, hashing, gradients on
// both machines, results kept from run to run) goes through internal/opkit;
// the numeric loops are plain generic functions over slices, in the
// *_kernel.go files and gemm.go.
package layerops
