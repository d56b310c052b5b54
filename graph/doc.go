// Package graph builds transformer layers on Gorgonia graphs with actq's
// ops: Linear, RMSNorm and LayerNorm, the feed-forward layer FFN (plain,
// GeGLU, SwiGLU), multi-head Attention with an optional causal mask, a
// pre-norm Block, and a tiny decoder-only Model with a cross-entropy loss.
//
// Every layer is built by a New function that adds its parameters to a
// graph as named input nodes (so gorgonia.Let can set them) and returns a
// value whose Forward method adds the computation. Parameters start from a
// seeded initialisation (WithSeed) or from given values (WithWeights), which
// are copied: a Weights value may seed any number of graphs.
//
// Shapes, weight names and the math of FFN and Attention follow actq's API
// contract (DESIGN.md); their outputs and gradients match PyTorch (tested
// against goldens in testdata/graph.json).
//
// Gorgonia graphs and machines are not safe for concurrent use: build one
// graph and one machine per goroutine. Nothing in this package is global.
package graph
