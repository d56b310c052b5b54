package studyio

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestTableAligns(t *testing.T) {
	tb := Table{Header: []string{"name", "value"}}
	tb.Add("a", "1")
	tb.Add("longer", "12.5%")
	var b bytes.Buffer
	tb.Fprint(&b)
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	want := []string{"name    value", "─────────────", "a           1", "longer  12.5%"}
	if strings.Join(lines, "|") != strings.Join(want, "|") {
		t.Errorf("got\n%s\nwant\n%s", b.String(), strings.Join(want, "\n"))
	}
}

func TestTableLeftColumns(t *testing.T) {
	tb := Table{Header: []string{"a", "tier", "n"}, Left: 2}
	tb.Add("x", "fp32", "1")
	tb.Add()
	tb.Add("yy", "w4a8-static", "10")
	var b bytes.Buffer
	tb.Fprint(&b)
	want := "a   tier          n\n" + strings.Repeat("─", 19) + "\nx   fp32          1\n\nyy  w4a8-static  10\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestPlotsWritePNGs(t *testing.T) {
	dir := t.TempDir()
	lp := LinePlot{Title: "t", XLabel: "x", YLabel: "y", LogX: true, LogY: true, Series: []Series{
		{Name: "a", X: []float64{128, 1024, 65536}, Y: []float64{1e-15, 1e-3, 10}},
		{Name: "with gaps", X: []float64{128, 1024, 65536}, Y: []float64{math.NaN(), 0, 2}}, // NaN and 0 skipped on a log axis
	}}
	bp := BarPlot{Title: "b", YLabel: "drop", Groups: []string{"g1", "g2"}, Values: map[string][]float64{"s1": {1, 2}, "s2": {math.Inf(1), -0.5}},
		Order: []string{"s2", "s1"}}
	for name, save := range map[string]func(string) error{"line.png": lp.Save, "bar.png": bp.Save} {
		path := filepath.Join(dir, "sub", name)
		if err := save(path); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil || img.Bounds().Dx() < 400 {
			t.Errorf("%s: %v, bounds %v", name, err, img.Bounds())
		}
	}
	// Given ticks replace the axis' own: exactly those values, labelled.
	lp.XTicks = []float64{128, 1024, 16384, 65536}
	p, _, err := lp.build()
	if err != nil {
		t.Fatal(err)
	}
	var labels []string
	for _, tk := range p.X.Tick.Marker.Ticks(p.X.Min, p.X.Max) {
		labels = append(labels, tk.Label)
	}
	if want := []string{"128", "1024", "16384", "65536"}; !slices.Equal(labels, want) {
		t.Errorf("x ticks %q, want %q", labels, want)
	}
	if err := lp.Save(filepath.Join(dir, "ticks.png")); err != nil {
		t.Error(err)
	}
	empty := LinePlot{Title: "empty", Series: []Series{{Name: "nan", X: []float64{1}, Y: []float64{math.NaN()}}}}
	if err := empty.Save(filepath.Join(dir, "empty.png")); err == nil {
		t.Error("a plot with nothing to draw saved without error")
	}
}

func TestDecadeTicksExactLabels(t *testing.T) {
	var labels []string
	for _, tk := range (decadeTicks{}).Ticks(3e-16, 20) {
		if tk.Label != "" {
			labels = append(labels, tk.Label)
		}
	}
	if got := strings.Join(labels, " "); got != "1e-16 1e-13 1e-10 1e-07 0.0001 0.1 100" {
		t.Errorf("labels %q", got)
	}
}

func TestWriteJSON(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "r.json")
	if err := WriteJSON(path, map[string]int{"x": 1}); err != nil {
		t.Fatal(err)
	}
	var v map[string]int
	raw, _ := os.ReadFile(path)
	if err := json.Unmarshal(raw, &v); err != nil || v["x"] != 1 {
		t.Errorf("read back %s: %v", raw, err)
	}
	if err := WriteJSON(path, math.NaN()); err == nil {
		t.Error("NaN encoded without error")
	}
	if err := WriteJSON(path, []Number{1.5, Number(math.NaN()), Number(math.Inf(-1))}); err != nil {
		t.Fatal(err)
	}
	if raw, _ := os.ReadFile(path); strings.Join(strings.Fields(string(raw)), "") != "[1.5,null,null]" {
		t.Errorf("Numbers encoded as %s, want [1.5, null, null]", raw)
	}
}

func TestNumberFormats(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	for _, c := range []struct {
		name   string
		format func(Number) string
		v      float64
		want   string
	}{
		{"DB", Number.DB, 12.345, "12.3"},
		{"DB", Number.DB, -0.04, "-0.0"},
		{"DB", Number.DB, inf, "∞"},
		{"DB", Number.DB, -inf, "−∞"},
		{"DB", Number.DB, nan, "—"},
		{"Pct(1)", func(n Number) string { return n.Pct(1) }, 0.125, "12.5%"},
		{"Pct(2)", func(n Number) string { return n.Pct(2) }, 0.99871, "99.87%"},
		{"Pct(1)", func(n Number) string { return n.Pct(1) }, nan, "—"},
		{"SmallPct", Number.SmallPct, 0, "0"},
		{"SmallPct", Number.SmallPct, 1.4e-4, "0.014%"},
		{"SmallPct", Number.SmallPct, 1e-7, "1e-5%"},
		{"SmallPct", Number.SmallPct, 0.5, "50%"},
		{"SmallPct", Number.SmallPct, nan, "—"},
		{"Points", Number.Points, 2.344, "2.34"},
		{"Points", Number.Points, -0.126, "−0.13"},
		{"Points", Number.Points, -0.004, "0.00"}, // never −0.00
		{"Points", Number.Points, nan, "—"},
		{"Sci", Number.Sci, 1.2345e-7, "1.23e-07"},
		{"Sci", Number.Sci, 0, "0"},
		{"Sci", Number.Sci, nan, "—"},
		{"Ratio", Number.Ratio, 1.254, "1.25×"},
		{"Ratio", Number.Ratio, nan, "—"},
	} {
		if got := c.format(Number(c.v)); got != c.want {
			t.Errorf("Number(%v).%s = %q, want %q", c.v, c.name, got, c.want)
		}
	}
}

func TestTableMarkdown(t *testing.T) {
	tb := Table{Header: []string{"method", "tier", "|Σp − 1|"}, Left: 2}
	tb.Add("float32", "fp32", "5e-9")
	tb.Add()
	tb.Add("fp16", "w4a8-static", "0.25")
	var b bytes.Buffer
	tb.FprintMarkdown(&b)
	want := `| method  | tier        | \|Σp − 1\| |
| ------- | ----------- | ---------: |
| float32 | fp32        |       5e-9 |
| fp16    | w4a8-static |       0.25 |
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

// writeReport writes a report with every kind of part, as a study does.
func writeReport(r *Report) {
	r.Printf("study: %d tiers\n", 2)
	r.Printf("\ntiers:\n")
	r.Item(6, "fp32", "the baseline")
	r.Item(6, "w8a8", "int8")
	r.Printf("cohorts:\n")
	r.Item(6, "in", "in distribution")
	tb := Table{Header: []string{"tier", "acc"}}
	tb.Add("fp32", "99%")
	r.Table(&tb)
	r.Printf("gate: PASS\n")
	r.Table(&tb)
	r.Printf("\nend\n")
}

func TestReport(t *testing.T) {
	var text, md bytes.Buffer
	writeReport(NewReport(&text, Text))
	writeReport(NewReport(&md, Markdown))
	wantText := `study: 2 tiers

tiers:
  fp32   the baseline
  w8a8   int8
cohorts:
  in     in distribution
tier  acc
─────────
fp32  99%
gate: PASS
tier  acc
─────────
fp32  99%

end
`
	// In Markdown a blank line ends each list and table, or the next line
	// would continue the last item or become a row.
	wantMD := `study: 2 tiers

tiers:
- **fp32** the baseline
- **w8a8** int8

cohorts:
- **in** in distribution

| tier | acc |
| ---- | --: |
| fp32 | 99% |

gate: PASS

| tier | acc |
| ---- | --: |
| fp32 | 99% |

end
`
	if text.String() != wantText {
		t.Errorf("text report:\n%s\nwant\n%s", text.String(), wantText)
	}
	if md.String() != wantMD {
		t.Errorf("Markdown report:\n%s\nwant\n%s", md.String(), wantMD)
	}
}

func TestPublish(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	var stdout bytes.Buffer
	if err := Publish(&stdout, dir, map[string]Number{"x": 1.5}, writeReport); err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	writeReport(NewReport(&text, Text))
	if stdout.String() != text.String() {
		t.Errorf("stdout %q, want the text report", stdout.String())
	}
	md, err := os.ReadFile(filepath.Join(dir, "results.md"))
	if err != nil || !bytes.Contains(md, []byte("| fp32 | 99% |")) {
		t.Errorf("results.md: %v\n%s", err, md)
	}
	if raw, err := os.ReadFile(filepath.Join(dir, "results.json")); err != nil || strings.Join(strings.Fields(string(raw)), "") != `{"x":1.5}` {
		t.Errorf("results.json: %v, %s", err, raw)
	}
	Wrote(&stdout, dir, 1.25, "results.json", "results.md")
	if !strings.HasSuffix(stdout.String(), "\nwrote "+dir+" (results.json, results.md) in 1.2 s\n") {
		t.Errorf("last line of %q", stdout.String())
	}
}

func TestRunExitStatus(t *testing.T) {
	parse := func(args []string, stderr io.Writer) (string, error) {
		fs := flag.NewFlagSet("study", flag.ContinueOnError)
		fs.SetOutput(stderr)
		outcome := fs.String("outcome", "ok", "")
		err := ParseFlags(fs, args)
		return *outcome, err
	}
	run := func(outcome string, stdout, stderr io.Writer) error {
		switch outcome {
		case "gate":
			return fmt.Errorf("%w: 1 combination(s)", ErrGate)
		case "fail":
			return errors.New("disk full")
		}
		fmt.Fprintln(stdout, "done")
		return nil
	}
	for _, c := range []struct {
		args      []string
		status    int
		stderrHas string
		stdoutHas string
	}{
		{nil, 0, "", "done"},
		{[]string{"-h"}, 0, "usage: go run ./examples/study", ""},
		{[]string{"-nosuchflag"}, ExitUsage, "study: flag provided but not defined: -nosuchflag\nrun with -h for the flags\n", ""},
		{[]string{"extra"}, ExitUsage, "study: unexpected arguments: [extra]\nrun with -h", ""},
		{[]string{"-outcome", "gate"}, ExitGate, "study: regression gate failed: 1 combination(s)\n", ""},
		{[]string{"-outcome", "fail"}, ExitError, "study: disk full\n", ""},
	} {
		var stdout, stderr bytes.Buffer
		status := Run("study", c.args, &stdout, &stderr, parse, run)
		if status != c.status || !strings.Contains(stderr.String(), c.stderrHas) || !strings.Contains(stdout.String(), c.stdoutHas) {
			t.Errorf("%q: status %d, stdout %q, stderr %q; want %d, stdout with %q, stderr with %q",
				c.args, status, stdout.String(), stderr.String(), c.status, c.stdoutHas, c.stderrHas)
		}
	}
}

func TestParseFlags(t *testing.T) {
	for _, c := range []struct {
		args    []string
		wantErr string
	}{
		{[]string{"-n", "3"}, ""},
		{[]string{"-n", "3", "extra"}, "unexpected arguments: [extra]"},
		{[]string{"-bogus"}, "flag provided but not defined: -bogus"},
	} {
		fs := flag.NewFlagSet("study", flag.ContinueOnError)
		var usage strings.Builder
		fs.SetOutput(&usage)
		n := fs.Int("n", 0, "a number")
		err := ParseFlags(fs, c.args)
		switch {
		case c.wantErr == "" && (err != nil || *n != 3):
			t.Errorf("ParseFlags(%q) = %v with n = %d, want nil and 3", c.args, err, *n)
		case c.wantErr != "" && (err == nil || err.Error() != c.wantErr):
			t.Errorf("ParseFlags(%q) = %v, want %q", c.args, err, c.wantErr)
		}
		if c.args[0] == "-bogus" && !strings.Contains(usage.String(), "usage: go run ./examples/study [flags]") {
			t.Errorf("usage for a bad flag is %q, want it to name the command", usage.String())
		}
	}
}

func TestRoundDB(t *testing.T) {
	for _, c := range []struct{ in, want float64 }{
		{12.345678, 12.3457},
		{-3.00004, -3},
		{math.Inf(1), math.Inf(1)},
		{math.Inf(-1), math.Inf(-1)},
	} {
		if got := RoundDB(c.in); float64(got) != c.want {
			t.Errorf("RoundDB(%g) = %g, want %g", c.in, float64(got), c.want)
		}
	}
	if got := RoundDB(math.NaN()); !math.IsNaN(float64(got)) {
		t.Errorf("RoundDB(NaN) = %g, want NaN", float64(got))
	}
}
