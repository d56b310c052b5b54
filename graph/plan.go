package graph

import (
	"gorgonia.org/gorgonia"
)

// SiteKind names a kind of place in a transformer where a quantization node
// may go.
type SiteKind uint8

const (
	SiteWeight      SiteKind = iota + 1 // a weight matrix (W1, W2, W3, Wq, Wk, Wv, Wo)
	SiteHead                            // the LM head's weight matrix
	SiteFFNInput                        // the FFN's input, before W1 (and W3)
	SiteFFNHidden                       // the FFN's hidden layer after the activation (and gate), before W2
	SiteAttnScores                      // Q·Kᵀ/√Dh, before the causal mask
	SiteAttnProbs                       // Softmax(scores), before P·V
	SiteBlockOutput                     // a block's output (the residual stream)
)

// site inserts the plan's quantization of kind at the site called name and
// returns its output; without a plan, or when the plan leaves the site
// alone, it returns x.
func (b *builder) site(name string, kind SiteKind, x *gorgonia.Node) (*gorgonia.Node, error) {
	return x, nil
}
