package graph

import (
	"fmt"
	"math"
	"sync"

	"github.com/actq/actq/internal/layerops"
	"github.com/actq/actq/ops"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// buildMu makes Trainers and Evaluators build their graphs one at a time
// (they run in parallel). Gorgonia adds package-level constant nodes to
// every graph it differentiates (onef32 in gorgonia.Grad) and computes a
// node's hash lazily, on first use: two graphs built at once race on that
// write (seen under -race with trainers started in parallel; see
// TestConcurrentFirstBuilds).
var buildMu sync.Mutex

// program is a model on its own graph with a fixed batch size: inputs,
// the loss and the logits read out at run time.
type program struct {
	cfg     Config
	batch   int
	g       *gorgonia.ExprGraph
	model   *Model
	tokens  *gorgonia.Node // Int (batch, SeqLen)
	targets *gorgonia.Node // Int (batch·SeqLen): the next token, or Ignore
	loss    *gorgonia.Node
	tokVal  *tensor.Dense
	tgtVal  *tensor.Dense
	lossOut gorgonia.Value // read by gorgonia.Read: intermediate values may be overwritten
	logits  gorgonia.Value
}

func newProgram(fn string, cfg Config, batch int, opts []Option) (*program, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	if err := positive(fn, "batch", batch); err != nil {
		return nil, err
	}
	p := &program{batch: batch, g: gorgonia.NewGraph()}
	m, err := NewModel(p.g, cfg, opts...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	p.model, p.cfg = m, m.Config()
	n := batch * cfg.SeqLen
	p.tokVal = tensor.New(tensor.WithShape(batch, cfg.SeqLen), tensor.WithBacking(make([]int, n)))
	p.tgtVal = tensor.New(tensor.WithShape(n), tensor.WithBacking(make([]int, n)))
	p.tokens = gorgonia.NewMatrix(p.g, tensor.Int, gorgonia.WithShape(batch, cfg.SeqLen), gorgonia.WithName("tokens"), gorgonia.WithValue(p.tokVal))
	p.targets = gorgonia.NewVector(p.g, tensor.Int, gorgonia.WithShape(n), gorgonia.WithName("targets"), gorgonia.WithValue(p.tgtVal))
	logits, err := m.Forward(p.tokens)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	// The mean cross-entropy of the counted targets, as CrossEntropy
	// computes it from one-hot targets, but from the target indices: no
	// (batch·SeqLen, Vocab) matrix is filled and multiplied.
	if p.loss, err = layerops.CrossEntropy(logits, p.targets); err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	gorgonia.Read(p.loss, &p.lossOut)
	gorgonia.Read(logits, &p.logits)
	return p, nil
}

// load writes a batch into the input tensors. It returns the number of
// counted targets.
func (p *program) load(fn string, b Batch) (int, error) {
	n := p.batch * p.cfg.SeqLen
	if len(b.Tokens) != n || len(b.Targets) != n {
		return 0, fmt.Errorf("%s: Batch.Tokens has %d and Batch.Targets %d elements, want %d (%d×%d): %w",
			fn, len(b.Tokens), len(b.Targets), n, p.batch, p.cfg.SeqLen, ops.ErrShape)
	}
	v := p.cfg.Vocab
	count := 0
	for i, tok := range b.Tokens {
		if tok < 0 || tok >= v {
			return 0, fmt.Errorf("%s: Batch.Tokens[%d] = %d is outside [0, %d): %w", fn, i, tok, v, ops.ErrValue)
		}
		if t := b.Targets[i]; t != Ignore {
			if t < 0 || t >= v {
				return 0, fmt.Errorf("%s: Batch.Targets[%d] = %d is outside [0, %d) and not Ignore: %w", fn, i, t, v, ops.ErrValue)
			}
			count++
		}
	}
	copy(p.tokVal.Ints(), b.Tokens)
	copy(p.tgtVal.Ints(), b.Targets) // Ignore is −1, which CrossEntropy skips
	return count, nil
}

// metrics returns the metrics of the last run on b, and the argmax
// predictions they count (batch·SeqLen tokens).
func (p *program) metrics(b Batch, count int) (Metrics, []int) {
	m := Metrics{Tokens: count, Seqs: p.batch, Loss: scalar(p.lossOut)}
	v, seq := p.cfg.Vocab, p.cfg.SeqLen
	pred := argmaxRows(p.logits, v)
	for s := range p.batch {
		ok := true
		for t := range seq {
			i := s*seq + t
			if b.Targets[i] == Ignore {
				continue
			}
			if pred[i] == b.Targets[i] {
				m.Correct++
			} else {
				ok = false
			}
		}
		if ok {
			m.SeqOK++
		}
	}
	return m, pred
}

func scalar(v gorgonia.Value) float64 {
	switch d := v.Data().(type) {
	case float32:
		return float64(d)
	case float64:
		return d
	}
	return math.NaN()
}

// argmaxRows returns the index of the largest element of each row of a
// (rows, v) value (the first on ties; NaN never wins).
func argmaxRows(val gorgonia.Value, v int) []int {
	switch d := val.Data().(type) {
	case []float32:
		return argmax(d, v)
	case []float64:
		return argmax(d, v)
	}
	return nil
}

func argmax[T float32 | float64](d []T, v int) []int {
	out := make([]int, len(d)/v)
	for r := range out {
		out[r] = argmaxRow(d[r*v : (r+1)*v])
	}
	return out
}

// argmaxRow returns the index of the largest element of row (the first on
// ties; NaN never wins, and an all-NaN row gives 0).
func argmaxRow[T float32 | float64](row []T) int {
	best := 0
	for j, x := range row {
		if x > row[best] || (row[best] != row[best] && x == x) {
			best = j
		}
	}
	return best
}
