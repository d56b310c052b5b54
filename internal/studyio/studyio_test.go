package studyio

import (
	"bytes"
	"encoding/json"
	"flag"
	"image/png"
	"math"
	"os"
	"path/filepath"
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

func TestNumberDB(t *testing.T) {
	for _, c := range []struct {
		v    float64
		want string
	}{{12.345, "12.3"}, {-0.04, "-0.0"}, {math.Inf(1), "∞"}, {math.Inf(-1), "−∞"}, {math.NaN(), "—"}} {
		if got := Number(c.v).DB(); got != c.want {
			t.Errorf("Number(%v).DB() = %q, want %q", c.v, got, c.want)
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
