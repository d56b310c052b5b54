package graph_test

import (
	"fmt"

	"github.com/actq/actq/graph"
)

// Train a tiny transformer to copy digits (trainCopy), then let a
// Generator continue a prompt: greedy in float32, greedy under the w8a8
// tier, and sampled.
func ExampleGenerator() {
	cfg, w, _, _ := trainCopy()

	prompt := []int{4, 2, 7, 10} // three digits and the separator
	gen, err := graph.NewGenerator(cfg, w)
	if err != nil {
		panic(err)
	}
	out, err := gen.Generate(prompt, 3, graph.Sampling{})
	fmt.Println("fp32:", out, err)

	tier, _ := graph.TierByName("w8a8")
	q8, err := graph.NewGenerator(cfg, w, graph.WithPlan(tier.Plan(cfg.SeqLen)))
	if err != nil {
		panic(err)
	}
	out, err = q8.Generate(prompt, 3, graph.Sampling{})
	fmt.Println("w8a8:", out, err)
	fmt.Println("sites:", len(q8.Sites()))

	// Sampling at temperature 0.5 among the 2 most likely tokens, seeded:
	// the same seed gives the same tokens.
	s := graph.Sampling{Temperature: 0.5, TopK: 2, Seed: 7}
	a, _ := gen.Generate(prompt, 3, s)
	b, _ := gen.Generate(prompt, 3, s)
	fmt.Println("reproducible:", fmt.Sprint(a) == fmt.Sprint(b))

	_, err = gen.Generate(prompt, 4, graph.Sampling{})
	fmt.Println(err)
	// Output:
	// fp32: [4 2 7] <nil>
	// w8a8: [4 2 7] <nil>
	// sites: 12
	// reproducible: true
	// graph.Generator.Generate: 4 prompt tokens and 4 new ones run 7 positions, beyond the model's 6: bad shape
}
