package graph

import (
	"fmt"
)

// Ignore marks a target position that does not count in the loss or the
// accuracy (PyTorch's ignore_index).
const Ignore = -1

// Batch is a batch of sequences of the model's SeqLen, row-major: token t
// of sequence s is Tokens[s·SeqLen+t], and Targets[s·SeqLen+t] is the token
// that should follow it, or Ignore.
type Batch struct {
	Tokens, Targets []int
}

// Metrics are a model's loss and accuracy over the counted (not Ignore)
// target positions of one or more batches.
type Metrics struct {
	Loss    float64 // mean cross-entropy per counted token (nats)
	Correct int     // counted tokens whose argmax prediction is the target
	Tokens  int     // counted tokens
	SeqOK   int     // sequences whose counted tokens are all correct
	Seqs    int     // sequences
}

// Accuracy returns Correct/Tokens (NaN for no tokens).
func (m Metrics) Accuracy() float64 { return float64(m.Correct) / float64(m.Tokens) }

// SeqAccuracy returns SeqOK/Seqs (NaN for no sequences).
func (m Metrics) SeqAccuracy() float64 { return float64(m.SeqOK) / float64(m.Seqs) }

// Add returns the metrics of the union of m's and o's batches.
func (m Metrics) Add(o Metrics) Metrics {
	r := Metrics{Correct: m.Correct + o.Correct, Tokens: m.Tokens + o.Tokens, SeqOK: m.SeqOK + o.SeqOK, Seqs: m.Seqs + o.Seqs}
	if r.Tokens > 0 {
		r.Loss = (m.Loss*float64(m.Tokens) + o.Loss*float64(o.Tokens)) / float64(r.Tokens)
	}
	return r
}

// String formats the loss and both accuracies with their counts.
func (m Metrics) String() string {
	return fmt.Sprintf("loss %.4f, token accuracy %.4f (%d/%d), sequence accuracy %.4f (%d/%d)",
		m.Loss, m.Accuracy(), m.Correct, m.Tokens, m.SeqAccuracy(), m.SeqOK, m.Seqs)
}
