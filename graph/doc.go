// Package graph builds transformer layers on Gorgonia graphs with actq's
// ops: Linear, RMSNorm and LayerNorm, the feed-forward layer FFN (plain,
// GeGLU, SwiGLU, with or without biases), Attention with an optional causal
// mask, grouped-query attention and rotary positions, a pre-norm Block,
// and a decoder-only Model with a cross-entropy loss: actq's own small
// model, or a Llama-family one, which LoadHF reads from a Hugging Face
// checkpoint and SaveHF writes back for PyTorch.
//
// Every layer is built by a New function that adds its parameters to a
// graph as named input nodes (so gorgonia.Let can set them) and returns a
// value whose Forward method adds the computation. Parameters start from a
// seeded initialisation (WithSeed) or from given values (WithWeights), which
// are copied: a Weights value may seed any number of graphs.
//
// Shapes, weight names and the math of each layer are stated on its type
// and New function; their outputs and gradients match PyTorch (tested
// against goldens in testdata/graph.json, and for Llama models, the
// checkpoints of testdata/llama).
//
// Quantization plans (Plan) say which quantize.Spec goes where: weights,
// the FFN's input and hidden layer, attention keys and values (what a KV
// cache holds), scores and probabilities, block outputs. A builder given
// WithPlan inserts FakeQuant nodes there, each counting its statistics
// (Site.Stats, Evaluator.Stats); Calibrate fixes static sites' scales from
// sample batches. A site whose Quant is Learnable learns its scales with
// the weights (LSQ, quantize.FakeQuantLearnable), from the calibrated or
// fixed ones: they are parameters of the Model, carried in its Weights
// (Site.Scale reports them).
//
// Trainer trains a Model with Adam; Evaluator runs one, optionally under a
// plan, and reports loss and accuracy (Metrics). Each owns its graph and
// machine. Gorgonia graphs and machines are not safe for concurrent use:
// use each Trainer or Evaluator from one goroutine, and run several for
// parallel studies. Generator writes text with a model (greedy or sampled,
// with a key/value cache, under a plan), and scores long sequences at
// chosen positions, without a graph; it is safe for concurrent use.
// Nothing in this package is global.
//
// Reshape in Gorgonia returns a view sharing its input's memory, which the
// tape machine's register allocator does not track: an elementwise op that
// writes in place over a dead view writes into its source. The layers never
// hand such a view of their caller's input to an in-place op (they copy
// instead), and the tests run every graph twice to catch any op that writes
// into memory still in use.
//
// The matrix products of the layers (Linear, FFN, the attention's
// projections and batched products, the LM head) run on actq's own GEMM,
// package blas, whatever BLAS Gorgonia is set to use: the package never
// changes that global choice. A program's own gorgonia.Mul nodes use
// Gorgonia's BLAS, gonum's by default; gorgonia.Use(actqblas.Implementation{})
// (import actqblas "github.com/actq/actq/blas") switches them too, for the
// whole program.
//
// A Trainer or Evaluator owns its graph, so its nodes keep their result
// tensors from one run to the next instead of allocating new ones on every
// step; values read out of it (Logits, Weights, the metrics) are copies.
package graph
