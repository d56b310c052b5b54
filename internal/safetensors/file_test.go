package safetensors_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/actq/actq/internal/safetensors"
)

// specials are float32 values whose bits must survive a round trip: signed
// zeros, the subnormal and normal extremes, infinities and NaNs with
// payloads.
var specials = []uint32{
	0x00000000, 0x80000000, 0x00000001, 0x807fffff, 0x00800000, 0x7f7fffff,
	0xff7fffff, 0x7f800000, 0xff800000, 0x7fc00000, 0x7f800001, 0xffc12345,
	0x3f800000, 0xbeaaaaab, 0x3f808000, 0x3f818000,
}

func specialFloats() []float32 {
	out := make([]float32, len(specials))
	for i, u := range specials {
		out[i] = math.Float32frombits(u)
	}
	return out
}

// TestWriteRead writes F32 and BF16 tensors (a matrix, a scalar, an empty
// tensor) and reads every one back, bit for bit (BF16: the rounded
// values).
func TestWriteRead(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "w.safetensors")
	sp := specialFloats()
	tensors := []safetensors.Tensor{
		{Name: "z.matrix", Shape: []int{4, 4}, Data: sp},
		{Name: "a.bf16", Shape: []int{16}, Data: sp, Dtype: safetensors.BF16},
		{Name: "scalar", Shape: nil, Data: []float32{-2.5}},
		{Name: "empty", Shape: []int{0, 7}, Data: nil},
	}
	meta := map[string]string{"format": "pt"}
	if err := safetensors.Write(path, tensors, meta); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if m := f.Metadata(); len(m) != 1 || m["format"] != "pt" {
		t.Errorf("Metadata() = %v", m)
	}
	// The reference order: F32 before BF16, then by name.
	var names []string
	for _, info := range f.Tensors() {
		names = append(names, info.Name)
	}
	if got, want := strings.Join(names, " "), "empty scalar z.matrix a.bf16"; got != want {
		t.Errorf("tensors in the file: %s, want %s", got, want)
	}
	for _, tt := range tensors {
		info, ok := f.Tensor(tt.Name)
		if !ok {
			t.Fatalf("no tensor %q", tt.Name)
		}
		if len(info.Shape) != len(tt.Shape) || info.Len() != len(tt.Data) || info.File != path {
			t.Errorf("%q: shape %v, file %s; want shape %v in %s", tt.Name, info.Shape, info.File, tt.Shape, path)
		}
		dst := make([]float32, len(tt.Data))
		if err := f.ReadFloat32(tt.Name, dst); err != nil {
			t.Fatal(err)
		}
		for i, v := range tt.Data {
			want := math.Float32bits(v)
			if tt.Dtype == safetensors.BF16 {
				want = uint32(safetensors.Float32ToBFloat16(v)) << 16
			}
			if got := math.Float32bits(dst[i]); got != want {
				t.Errorf("%q[%d] = %#08x, want %#08x", tt.Name, i, got, want)
			}
		}
	}
	// The BF16 bytes as stored.
	raw := make([]byte, 32)
	if err := f.ReadRaw("a.bf16", raw); err != nil {
		t.Fatal(err)
	}
	for i, v := range sp {
		if got, want := binary.LittleEndian.Uint16(raw[2*i:]), safetensors.Float32ToBFloat16(v); got != want {
			t.Errorf("a.bf16 byte pair %d = %#04x, want %#04x", i, got, want)
		}
	}
}

// TestReadF16 reads a hand-made F16 tensor holding every class of binary16
// value.
func TestReadF16(t *testing.T) {
	halves := []uint16{0x0000, 0x8000, 0x0001, 0x03ff, 0x0400, 0x3c00, 0xc000, 0x7bff, 0xfbff, 0x7c00, 0xfc00, 0x7e00, 0x7c01, 0x3555}
	data := make([]byte, 0, 2*len(halves))
	for _, h := range halves {
		data = binary.LittleEndian.AppendUint16(data, h)
	}
	b := file(`{`+entry("h", "F16", "[2,7]", 0, int64(len(data)))+`}`, 0)
	f, err := safetensors.OpenBytes(testPath, append(b, data...))
	if err != nil {
		t.Fatal(err)
	}
	dst := make([]float32, len(halves))
	if err := f.ReadFloat32("h", dst); err != nil {
		t.Fatal(err)
	}
	want := []float64{0, math.Copysign(0, -1), 0x1p-24, 1023 * 0x1p-24, 0x1p-14, 1, -2, 65504, -65504,
		math.Inf(1), math.Inf(-1), math.NaN(), math.NaN(), 0.333251953125}
	for i, w := range want {
		got := float64(dst[i])
		if math.IsNaN(w) != math.IsNaN(got) || (!math.IsNaN(w) && (got != w || math.Signbit(got) != math.Signbit(w))) {
			t.Errorf("F16 %#04x read as %g, want %g", halves[i], got, w)
		}
	}
}

// TestReadFloat32At reads every tensor of the F32, F16 and BF16 test
// checkpoints in pieces of every length from 1 to 7 elements at every
// start (up to the first 300), and checks each piece against the slice of
// the whole tensor.
func TestReadFloat32At(t *testing.T) {
	for _, name := range []string{"gqa-f32", "gqa-f16", "mha-bf16-tied"} {
		f, err := safetensors.Open(filepath.Join("..", "..", "testdata", "llama", name, safetensors.ModelFile))
		if err != nil {
			t.Fatal(err)
		}
		for _, info := range f.Tensors() {
			whole := make([]float32, info.Len())
			if err := f.ReadFloat32(info.Name, whole); err != nil {
				t.Fatal(err)
			}
			for start := 0; start < min(len(whole), 300); start++ {
				for n := 1; n <= 7 && start+n <= len(whole); n++ {
					part := make([]float32, n)
					if err := f.ReadFloat32At(info.Name, part, start); err != nil {
						t.Fatal(err)
					}
					for i, v := range part {
						if math.Float32bits(v) != math.Float32bits(whole[start+i]) {
							t.Fatalf("%s %s: element %d read at %d+%d: %g, want %g", name, info.Name, start+i, start, i, v, whole[start+i])
						}
					}
				}
			}
			// The last elements, and an empty read at the end.
			if err := f.ReadFloat32At(info.Name, make([]float32, 3), len(whole)-3); err != nil {
				t.Error(err)
			}
			if err := f.ReadFloat32At(info.Name, nil, len(whole)); err != nil {
				t.Error(err)
			}
		}
		f.Close()
	}
}

// TestReadErrors checks each way ReadFloat32 and ReadRaw refuse, and that
// each error names the file and the tensor.
func TestReadErrors(t *testing.T) {
	hdr := `{` + entry("w", "F32", "[2,2]", 0, 16) + `,` + entry("i", "I64", "[1]", 16, 24) + `}`
	f, err := safetensors.OpenBytes(testPath, file(hdr, 24))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		err  error
		want error
		tens string
	}{
		{"no such tensor", f.ReadFloat32("missing", make([]float32, 4)), safetensors.ErrNotFound, `"missing"`},
		{"short destination", f.ReadFloat32("w", make([]float32, 3)), safetensors.ErrShape, `"w"`},
		{"long destination", f.ReadFloat32("w", make([]float32, 5)), safetensors.ErrShape, `"w"`},
		{"nil destination", f.ReadFloat32("w", nil), safetensors.ErrShape, `"w"`},
		{"I64 as float32", f.ReadFloat32("i", make([]float32, 1)), safetensors.ErrDtype, `"i"`},
		{"range before the start", f.ReadFloat32At("w", make([]float32, 1), -1), safetensors.ErrShape, `"w"`},
		{"range past the end", f.ReadFloat32At("w", make([]float32, 2), 3), safetensors.ErrShape, `"w"`},
		{"range starting past the end", f.ReadFloat32At("w", nil, 5), safetensors.ErrShape, `"w"`},
		{"range of I64", f.ReadFloat32At("i", make([]float32, 1), 0), safetensors.ErrDtype, `"i"`},
		{"range, no such tensor", f.ReadFloat32At("x", make([]float32, 1), 0), safetensors.ErrNotFound, `"x"`},
		{"raw, wrong size", f.ReadRaw("w", make([]byte, 15)), safetensors.ErrShape, `"w"`},
		{"raw, no such tensor", f.ReadRaw("x", make([]byte, 15)), safetensors.ErrNotFound, `"x"`},
	} {
		switch {
		case !errors.Is(tc.err, tc.want):
			t.Errorf("%s: %v, want %v", tc.name, tc.err, tc.want)
		case !strings.Contains(tc.err.Error(), testPath) || !strings.Contains(tc.err.Error(), tc.tens):
			t.Errorf("%s: %q names neither %s nor %s", tc.name, tc.err, testPath, tc.tens)
		}
	}
	if err := f.ReadRaw("i", make([]byte, 8)); err != nil {
		t.Errorf("ReadRaw of an I64 tensor: %v", err)
	}
}

// TestOpenFileErrors checks files that cannot be opened, and a file
// truncated after Open.
func TestOpenFileErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.safetensors")
	if _, err := safetensors.Open(missing); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("Open(missing) = %v", err)
	}
	if _, err := safetensors.Open(dir); !errors.Is(err, safetensors.ErrFormat) || !strings.Contains(err.Error(), dir) {
		t.Errorf("Open(a directory) = %v", err)
	}
	path := filepath.Join(dir, "t.safetensors")
	if err := safetensors.Write(path, []safetensors.Tensor{{Name: "a", Shape: []int{2}, Data: []float32{1, 2}}, {Name: "b", Shape: []int{2}, Data: []float32{3, 4}}}, nil); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	short := filepath.Join(dir, "short.safetensors")
	os.WriteFile(short, data[:len(data)-1], 0o644)
	if _, err := safetensors.Open(short); !errors.Is(err, safetensors.ErrFormat) || !strings.Contains(err.Error(), `"b"`) || !strings.Contains(err.Error(), short) {
		t.Errorf("Open(truncated) = %v", err)
	}
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := os.Truncate(path, int64(len(data)-4)); err != nil {
		t.Fatal(err)
	}
	if err := f.ReadFloat32("b", make([]float32, 2)); !errors.Is(err, io.ErrUnexpectedEOF) || !strings.Contains(err.Error(), `"b"`) {
		t.Errorf("ReadFloat32 after truncation = %v, want io.ErrUnexpectedEOF naming b", err)
	}
	if err := f.ReadFloat32("a", make([]float32, 2)); err != nil {
		t.Errorf("ReadFloat32 of the intact tensor: %v", err)
	}
}

// TestWriteReference checks Write's bytes against the reference
// implementation's serialization tests (safetensors/src/tensor.rs:
// test_serialization, test_serialization_forced_alignement, test_empty).
func TestWriteReference(t *testing.T) {
	data := []float32{0, 1, 2, 3, 4, 5}
	le := make([]byte, 0, 24)
	for _, v := range data {
		le = binary.LittleEndian.AppendUint32(le, math.Float32bits(v))
	}
	for _, tc := range []struct {
		name    string
		tensors []safetensors.Tensor
		meta    map[string]string
		header  string
		data    []byte
	}{
		{"attn.0", []safetensors.Tensor{{Name: "attn.0", Shape: []int{1, 2, 3}, Data: data}}, nil,
			`{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}`, le},
		{"forced alignment", []safetensors.Tensor{{Name: "attn0", Shape: []int{1, 1, 2, 3}, Data: data}}, nil,
			`{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}       `, le},
		{"empty", nil, nil, `{}      `, nil},
		{"empty with metadata", nil, map[string]string{"framework": "pt"},
			`{"__metadata__":{"framework":"pt"}}     `, nil},
	} {
		path := filepath.Join(t.TempDir(), "ref.safetensors")
		if err := safetensors.Write(path, tc.tensors, tc.meta); err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(path)
		want := binary.LittleEndian.AppendUint64(nil, uint64(len(tc.header)))
		want = append(append(want, tc.header...), tc.data...)
		if !bytes.Equal(got, want) {
			t.Errorf("%s: Write gave\n%q\nwant\n%q", tc.name, got, want)
		}
	}
}

// TestWriteDeterministic writes the same tensors given in two orders.
func TestWriteDeterministic(t *testing.T) {
	ts := []safetensors.Tensor{
		{Name: "b", Shape: []int{2}, Data: []float32{1, 2}},
		{Name: "a", Shape: []int{1}, Data: []float32{3}, Dtype: safetensors.BF16},
		{Name: "c<&>", Shape: []int{1}, Data: []float32{4}},
	}
	dir := t.TempDir()
	p1, p2 := filepath.Join(dir, "1"), filepath.Join(dir, "2")
	if err := safetensors.Write(p1, ts, map[string]string{"x": "1", "a": "2"}); err != nil {
		t.Fatal(err)
	}
	rev := []safetensors.Tensor{ts[2], ts[1], ts[0]}
	if err := safetensors.Write(p2, rev, map[string]string{"a": "2", "x": "1"}); err != nil {
		t.Fatal(err)
	}
	b1, _ := os.ReadFile(p1)
	b2, _ := os.ReadFile(p2)
	if !bytes.Equal(b1, b2) {
		t.Errorf("the same tensors in another order gave other bytes:\n%q\n%q", b1, b2)
	}
	if !bytes.Contains(b1, []byte(`"c<&>"`)) {
		t.Errorf("name escaped: %q", b1)
	}
}

// TestWriteFill checks that tensors whose data come from Fill, in chunks,
// give the same bytes as the same data in Data, in F32 and BF16, for
// tensors longer than a chunk, a scalar and an empty tensor, and that Fill
// sees every element once, in order.
func TestWriteFill(t *testing.T) {
	big := make([]float32, 2500)
	for i := range big {
		big[i] = float32(i)*0.37 - 400
	}
	data := []safetensors.Tensor{
		{Name: "big", Shape: []int{50, 50}, Data: big},
		{Name: "bf", Shape: []int{2500}, Data: big, Dtype: safetensors.BF16},
		{Name: "scalar", Data: []float32{3.5}},
		{Name: "empty", Shape: []int{0, 4}, Data: []float32{}},
	}
	filled := make([]safetensors.Tensor, len(data))
	for i, d := range data {
		next := 0
		filled[i] = safetensors.Tensor{Name: d.Name, Shape: d.Shape, Dtype: d.Dtype, Fill: func(dst []float32, start int) {
			if start != next {
				t.Errorf("%s: Fill from %d, want %d", d.Name, start, next)
			}
			next = start + len(dst)
			copy(dst, d.Data[start:])
		}}
	}
	dir := t.TempDir()
	p1, p2 := filepath.Join(dir, "data"), filepath.Join(dir, "fill")
	if err := safetensors.Write(p1, data, nil); err != nil {
		t.Fatal(err)
	}
	if err := safetensors.Write(p2, filled, nil); err != nil {
		t.Fatal(err)
	}
	b1, _ := os.ReadFile(p1)
	b2, _ := os.ReadFile(p2)
	if !bytes.Equal(b1, b2) {
		t.Error("Fill gave other bytes than Data")
	}
	both := safetensors.Tensor{Name: "both", Shape: []int{1}, Data: []float32{1}, Fill: func([]float32, int) {}}
	if err := safetensors.Write(p2, []safetensors.Tensor{both}, nil); !errors.Is(err, safetensors.ErrShape) {
		t.Errorf("Data and Fill: got %v, want ErrShape", err)
	}
}

// TestWriteErrors checks that bad tensors are refused with an error naming
// the tensor, and that nothing is written: an existing file is kept and
// no temporary file is left.
func TestWriteErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keep.safetensors")
	os.WriteFile(path, []byte("old"), 0o644)
	ok := safetensors.Tensor{Name: "ok", Shape: []int{1}, Data: []float32{1}}
	for _, tc := range []struct {
		name    string
		tensors []safetensors.Tensor
		meta    map[string]string
		want    error
		names   string
	}{
		{"duplicate", []safetensors.Tensor{ok, ok}, nil, safetensors.ErrName, `"ok"`},
		{"reserved name", []safetensors.Tensor{{Name: "__metadata__", Shape: []int{1}, Data: []float32{1}}}, nil, safetensors.ErrName, "__metadata__"},
		{"name not UTF-8", []safetensors.Tensor{{Name: "a\xff", Shape: []int{1}, Data: []float32{1}}}, nil, safetensors.ErrName, "UTF-8"},
		{"metadata not UTF-8", []safetensors.Tensor{ok}, map[string]string{"k": "\xfe"}, safetensors.ErrName, `"k"`},
		{"F16 output", []safetensors.Tensor{{Name: "h", Shape: []int{1}, Data: []float32{1}, Dtype: safetensors.F16}}, nil, safetensors.ErrDtype, `"h"`},
		{"negative dimension", []safetensors.Tensor{{Name: "n", Shape: []int{-1, -1}, Data: []float32{1}}}, nil, safetensors.ErrShape, `"n"`},
		{"shape disagrees with data", []safetensors.Tensor{ok, {Name: "s", Shape: []int{2, 3}, Data: make([]float32, 5)}}, nil, safetensors.ErrShape, `"s"`},
		{"shape overflows", []safetensors.Tensor{{Name: "o", Shape: []int{1 << 40, 1 << 40}, Data: nil}}, nil, safetensors.ErrShape, `"o"`},
	} {
		err := safetensors.Write(path, tc.tensors, tc.meta)
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.names) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: %v, want %v naming %s and %s", tc.name, err, tc.want, tc.names, path)
		}
	}
	if b, _ := os.ReadFile(path); string(b) != "old" {
		t.Errorf("a refused Write changed the file: %q", b)
	}
	// A failure while writing (here: the directory does not exist) leaves
	// nothing behind.
	if err := safetensors.Write(filepath.Join(dir, "no", "x.safetensors"), []safetensors.Tensor{ok}, nil); err == nil {
		t.Error("Write into a missing directory succeeded")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("files left in the directory: %v", entries)
	}
}
