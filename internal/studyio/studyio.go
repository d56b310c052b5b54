// Package studyio holds what the example studies share: their command-line
// handling and exit statuses, the report they print (aligned text on
// stdout, the same tables in Markdown for a README), results.json, PNG line
// and bar plots, and a progress bar.
package studyio

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
)

// WriteJSON writes v, indented, to path, creating its directory.
func WriteJSON(path string, v any) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// Publish writes a study's results: the report as aligned text to stdout,
// v as dir/results.json, and the report again in Markdown as
// dir/results.md, whose tables paste into the study's README as they are.
// report writes the same report in either format.
func Publish(stdout io.Writer, dir string, v any, report func(*Report)) error {
	report(NewReport(stdout, Text))
	if err := WriteJSON(filepath.Join(dir, "results.json"), v); err != nil {
		return err
	}
	var md bytes.Buffer
	report(NewReport(&md, Markdown))
	return os.WriteFile(filepath.Join(dir, "results.md"), md.Bytes(), 0o644)
}

// Wrote prints the line that ends a study's output: the output directory,
// the files written there, and how long the run took.
func Wrote(w io.Writer, dir string, seconds float64, files ...string) {
	fmt.Fprintf(w, "\nwrote %s (%s) in %.1f s\n", dir, strings.Join(files, ", "), seconds)
}

// Number is a float64 that encodes NaN and ±Inf as JSON null (which
// encoding/json refuses to encode), for results with undefined or infinite
// values: an accuracy over no tokens, the SQNR of a lossless site. Its
// methods format it for a table cell, each printing — for NaN.
type Number float64

// MarshalJSON encodes n as a JSON number, or null if it is not finite.
func (n Number) MarshalJSON() ([]byte, error) {
	f := float64(n)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("null"), nil
	}
	return json.Marshal(f)
}

// UnmarshalJSON decodes a JSON number, or null as NaN (so that a value
// written by MarshalJSON reads back, the infinities as NaN).
func (n *Number) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*n = Number(math.NaN())
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	*n = Number(f)
	return nil
}

// RoundDB rounds an SQNR in decibels to 1e-4 dB; ±Inf and NaN stay. The
// quantization sites add Σx² and Σ(y−x)² in an order that depends on the
// core count and on which concurrent sequence reaches them first, so the
// last digits of an SQNR vary from run to run; rounded, results.json is
// the same from run to run and machine to machine.
func RoundDB(v float64) Number {
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return Number(v)
	}
	return Number(math.Round(v*1e4) / 1e4)
}

// DB formats a value in decibels: one decimal, ∞ and −∞ for the
// infinities (a lossless or an overflowed site).
func (n Number) DB() string {
	f := float64(n)
	switch {
	case math.IsNaN(f):
		return "—"
	case math.IsInf(f, 1):
		return "∞"
	case math.IsInf(f, -1):
		return "−∞"
	}
	return fmt.Sprintf("%.1f", f)
}

// Pct formats a fraction as a percentage with prec decimals: 0.125 as
// "12.5%" for prec 1.
func (n Number) Pct(prec int) string {
	if math.IsNaN(float64(n)) {
		return "—"
	}
	return fmt.Sprintf("%.*f%%", prec, 100*float64(n))
}

// SmallPct formats a fraction that is often tiny, such as the share of
// values a quantizer clipped: "0" for exactly 0, so that nothing and a
// little stay apart, otherwise a percentage with two significant digits
// ("0.014%", "1e-5%").
func (n Number) SmallPct() string {
	return n.nonZero(func(f float64) string { return strings.Replace(fmt.Sprintf("%.2g%%", 100*f), "e-0", "e-", 1) })
}

// Points formats a difference in percentage points with two decimals and
// a minus sign (−); a magnitude below 0.005 prints as "0.00", never "−0.00".
func (n Number) Points() string {
	f := float64(n)
	if math.IsNaN(f) {
		return "—"
	}
	if math.Abs(f) < 0.005 {
		return "0.00"
	}
	return strings.Replace(fmt.Sprintf("%.2f", f), "-", "−", 1)
}

// Sci formats an error or a rate that spans many decades in scientific
// notation with three significant digits ("1.23e-07"); exactly 0 prints as
// "0".
func (n Number) Sci() string {
	return n.nonZero(func(f float64) string { return fmt.Sprintf("%.2e", f) })
}

// nonZero formats n with format, except NaN (—) and exactly 0 ("0"), which
// a column of small values shows apart from them.
func (n Number) nonZero(format func(float64) string) string {
	f := float64(n)
	switch {
	case math.IsNaN(f):
		return "—"
	case f == 0:
		return "0"
	}
	return format(f)
}

// Ratio formats a ratio with two decimals and a multiplication sign
// ("1.25×").
func (n Number) Ratio() string {
	if math.IsNaN(float64(n)) {
		return "—"
	}
	return fmt.Sprintf("%.2f×", float64(n))
}
