// Package infer is actq's inference engine: a decoder-only transformer
// (package graph's Model, and Llama-family models) run in plain Go over
// float32 weights, without a graph, for generation and for scoring long
// sequences.
//
// A State holds one sequence's key/value cache, per layer and KV head, in
// float32. Forward runs new tokens: one token costs attention over the
// cache (O(positions)) plus the matrix–vector products of the weights; a
// long input runs in chunks of rows, and attention over the cache runs in
// blocks of query rows, so memory is O(block·positions) per head, never a
// positions×positions matrix. The logits are computed only for the rows
// asked for. Work is split over GOMAXPROCS goroutines where it is large.
//
// The arithmetic is the graph's, kernel for kernel: norms and rotary
// positions from internal/layerops, activations and softmax from
// ops/kernel, every matrix product through one call (matmul), by default
// actq's Sgemm for several rows and gonum's Sgemv for one. With
// Options.Products = ProductsGraph (actq's Sgemm for every product, as
// graph's layers do) the engine gives the graph's results bit for bit (see package
// graph's tests of its Generator); with the default, within float32
// rounding.
//
// Hooks in the Model (RowSite, AttnSite, KVSite) are where a caller
// quantizes or watches activations: package graph puts its quantization
// plans there. Options.Attention selects attention's arithmetic, for
// studies of fp16 attention (fp16 scores, fp16 P·V accumulation with and
// without llama.cpp's offset of the maximum).
package infer
