package main

import (
	"go/doc"
	"go/parser"
	"go/token"
	"os"
	"strings"
	"testing"
)

// The output is the same in the default, GOEXPERIMENT=simd and purego
// builds: their kernels differ in the last bits, well below the printed
// digits.
func Example() {
	main()
	// Output:
	// p  = [0.1092 0.1092 0.7817 0.0151 0.9793 0.0056]
	// dx = [-0.0012 -0.0060 -0.0926 -0.0001 -0.0055 -0.0005]
	// fp32      token accuracy 100.0%, loss 1.389e-03
	// bf16      token accuracy 100.0%, loss 1.389e-03
	// fp8-e4m3  token accuracy 100.0%, loss 1.389e-03
	// w8a8      token accuracy 100.0%, loss 1.391e-03
	// w4a8      token accuracy 100.0%, loss 1.425e-03
}

// TestREADME checks that the repository's README shows this program as it
// is, followed by the output Example checks.
func TestREADME(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	f, err := parser.ParseFile(token.NewFileSet(), "main_test.go", nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	var output string
	for _, ex := range doc.Examples(f) {
		if ex.Name == "" {
			output = ex.Output
		}
	}
	if output == "" {
		t.Fatal("no output in Example")
	}
	code := "```go\n" + string(src) + "```\n"
	i := strings.Index(string(readme), code)
	if i < 0 {
		t.Fatal("README.md does not show examples/quickstart/main.go as it is, in a ```go block")
	}
	rest := string(readme[i+len(code):])
	j := strings.Index(rest, "```text\n")
	if j < 0 || !strings.HasPrefix(rest[j:], "```text\n"+output+"```\n") {
		t.Errorf("the first ```text block after the program in README.md is not its output:\n%s", output)
	}
}
