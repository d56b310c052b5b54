package main

import (
	"bytes"
	"go/doc"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/actq/actq/internal/studyio"
)

const checkpoint = "../../testdata/llama/gqa-f32"

// The output is the same in the default, GOEXPERIMENT=simd and purego
// builds: their kernels differ in the last bits, below the printed digits.
func Example() {
	if err := run(config{Model: checkpoint, SeqLen: 16, Steps: 8, LR: 1e-2, New: 8}, os.Stdout, os.Stderr); err != nil {
		panic(err)
	}
	// Output:
	// ../../testdata/llama/gqa-f32: 2 layers, d_model 32, 4 heads, 2 key/value heads, vocabulary 64, 22688 parameters
	// fp32         loss 4.664  accuracy   3.1%
	// bf16         loss 4.666  accuracy   3.1%
	// fp16         loss 4.664  accuracy   3.1%
	// fp8-e4m3     loss 4.674  accuracy   3.1%
	// w8a8         loss 4.667  accuracy   3.1%
	// w4a8         loss 4.683  accuracy   3.1%
	// w4a8-static  loss 4.636  accuracy   3.1%
	// fine-tuning: training loss [4.50 3.11 2.21 1.57 1.11 0.78 0.56 0.41]; test loss 0.610, accuracy 96.9%
	// greedy after [10 11 12 13]: before fine-tuning [19 30 14 43 52 16 55 20], after [14 15 16 17 18 19 20 21]
	// saved and loaded back bit for bit
}

// TestCommand checks the exit statuses and messages: bad flags 2, a
// checkpoint that cannot be read 1 with its path, and -out keeping the
// saved checkpoint.
func TestCommand(t *testing.T) {
	out := t.TempDir()
	for _, c := range []struct {
		args   []string
		status int
		want   string // in stdout or stderr
	}{
		{[]string{"-seq", "1"}, studyio.ExitUsage, "want -seq ≥ 2"},
		{[]string{"-lr", "NaN"}, studyio.ExitUsage, "-lr > 0"},
		{[]string{"-lr", "Inf"}, studyio.ExitUsage, "-lr > 0"},
		{[]string{"-nope"}, studyio.ExitUsage, "flag provided but not defined"},
		{[]string{"extra"}, studyio.ExitUsage, "unexpected arguments"},
		{[]string{"-model", filepath.Join(out, "missing")}, studyio.ExitError, filepath.Join(out, "missing")},
		{[]string{"-model", checkpoint, "-steps", "0", "-new", "1", "-out", out}, 0, "saved in " + out},
	} {
		var stdout, stderr bytes.Buffer
		status := studyio.Run("llama", c.args, &stdout, &stderr, parse, run)
		if status != c.status || !strings.Contains(stdout.String()+stderr.String(), c.want) {
			t.Errorf("%v: status %d, want %d, output\n%s%s\nwant it to contain %q", c.args, status, c.status, stdout.String(), stderr.String(), c.want)
		}
	}
	for _, f := range []string{"config.json", "model.safetensors"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
}

// TestREADME checks that the README's Llama section shows an excerpt of
// this program: its Go block's lines appear in main.go in the same order
// (the block leaves out error handling and printing), and the lines of
// the first text block after it are lines of Example's output.
func TestREADME(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	const start = "```go\n// examples/llama, in short"
	i := strings.Index(string(readme), start)
	if i < 0 {
		t.Fatalf("README.md has no block starting %q", start)
	}
	block := string(readme[i+len("```go\n"):])
	block = block[:strings.Index(block, "```")]
	lines := strings.Split(string(src), "\n")
	at := 0
	for _, want := range strings.Split(strings.TrimSpace(block), "\n")[1:] {
		want = strings.TrimSpace(want)
		for at < len(lines) && strings.TrimSpace(lines[at]) != want {
			at++
		}
		if at == len(lines) {
			t.Fatalf("README.md's excerpt line %q is not in main.go (in order)", want)
		}
	}
	f, err := parser.ParseFile(token.NewFileSet(), "main_test.go", nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	var output []string
	for _, ex := range doc.Examples(f) {
		if ex.Name == "" {
			output = strings.Split(ex.Output, "\n")
		}
	}
	rest := string(readme[i:])
	j := strings.Index(rest, "```text\n")
	if j < 0 || len(output) == 0 {
		t.Fatal("no text block after the excerpt in README.md, or no output in Example")
	}
	text := rest[j+len("```text\n"):]
	for _, line := range strings.Split(strings.TrimSpace(text[:strings.Index(text, "```")]), "\n") {
		if !slices.Contains(output, line) {
			t.Errorf("README.md shows %q, which Example does not print", line)
		}
	}
}
