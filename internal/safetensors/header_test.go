package safetensors_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/actq/actq/internal/safetensors"
)

// file returns a safetensors file: the length of hdr, hdr, and data zero
// bytes.
func file(hdr string, data int) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(hdr)))
	b = append(b, hdr...)
	return append(b, make([]byte, data)...)
}

// entry returns one tensor's header entry.
func entry(name, dtype, shape string, begin, end int64) string {
	return fmt.Sprintf(`%q:{"dtype":%q,"shape":%s,"data_offsets":[%d,%d]}`, name, dtype, shape, begin, end)
}

const testPath = "dir/test.safetensors"

// headerCase is one input to Open: a valid file (want nil) or a broken one,
// whose error must wrap want and contain every string of names (the file,
// and the tensor at fault).
type headerCase struct {
	name  string
	b     []byte
	want  error
	names []string
}

func headerCases() []headerCase {
	a8 := entry("a", "F32", "[2]", 0, 8)
	valid := []headerCase{
		{"no tensors", file(`{}`, 0), nil, nil},
		{"no tensors, padded", file(`{}      `, 0), nil, nil},
		{"one tensor", file(`{`+a8+`}`, 8), nil, nil},
		{"metadata", file(`{"__metadata__":{"format":"pt"},`+a8+`}`, 8), nil, nil},
		{"null metadata", file(`{"__metadata__":null,`+a8+`}`, 8), nil, nil},
		{"extra key in an entry (ignored, as the reference does)", file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":[1]}}`, 8), nil, nil},
		{"scalar", file(`{`+entry("s", "F32", "[]", 0, 4)+`}`, 4), nil, nil},
		{"empty tensor", file(`{`+entry("e", "F32", "[0,3]", 0, 0)+`,`+a8+`}`, 8), nil, nil},
		{"header out of offset order", file(`{`+entry("b", "BF16", "[2]", 8, 12)+`,`+a8+`}`, 12), nil, nil},
		{"I64 and F64 parse", file(`{`+entry("i", "I64", "[1]", 0, 8)+`,`+entry("d", "F64", "[1]", 8, 16)+`}`, 16), nil, nil},
		{"F4, whole bytes", file(`{`+entry("q", "F4", "[2]", 0, 1)+`}`, 1), nil, nil},
		{"F8 parses", file(`{`+entry("q", "F8_E4M3", "[3]", 0, 3)+`}`, 3), nil, nil},
	}
	bad := []headerCase{
		{"empty file", nil, safetensors.ErrFormat, []string{testPath, "0 bytes"}},
		{"7 bytes", make([]byte, 7), safetensors.ErrFormat, []string{testPath}},
		{"header length over 100 MB", binary.LittleEndian.AppendUint64(nil, 100_000_001), safetensors.ErrFormat, []string{testPath, "100000001"}},
		{"header length 2^64-1", binary.LittleEndian.AppendUint64(nil, 1<<64-1), safetensors.ErrFormat, []string{testPath}},
		{"header length beyond the file", file(`{}`, 0)[:9], safetensors.ErrFormat, []string{testPath, "past the end"}},
		{"invalid UTF-8", file("{\"\xff\":1}", 0), safetensors.ErrFormat, []string{testPath, "UTF-8"}},
		{"broken JSON", file(`{"a":`, 0), safetensors.ErrFormat, []string{testPath}},
		{"broken JSON in an entry", file(`{"a":{"dtype":"F32",}}`, 0), safetensors.ErrFormat, []string{testPath, `"a"`}},
		{"not an object", file(`[1,2]`, 0), safetensors.ErrFormat, []string{testPath}},
		{"empty header", file(``, 0), safetensors.ErrFormat, []string{testPath}},
		{"data after the object", file(`{} {}`, 0), safetensors.ErrFormat, []string{testPath}},
		{"NUL padding", file("{}\x00", 0), safetensors.ErrFormat, []string{testPath}},
		{"duplicate name", file(`{`+a8+`,`+entry("a", "F32", "[2]", 8, 16)+`}`, 16), safetensors.ErrFormat, []string{testPath, `"a"`, "twice"}},
		{"duplicate metadata", file(`{"__metadata__":{},"__metadata__":{}}`, 0), safetensors.ErrFormat, []string{testPath, "twice"}},
		{"duplicate metadata key", file(`{"__metadata__":{"k":"1","k":"2"}}`, 0), safetensors.ErrFormat, []string{testPath, `"k"`}},
		{"metadata value not a string", file(`{"__metadata__":{"k":1}}`, 0), safetensors.ErrFormat, []string{testPath, `"k"`}},
		{"metadata not an object", file(`{"__metadata__":[]}`, 0), safetensors.ErrFormat, []string{testPath}},
		{"entry not an object", file(`{"a":1}`, 0), safetensors.ErrFormat, []string{testPath, `"a"`}},
		{"entry null", file(`{"a":null}`, 0), safetensors.ErrFormat, []string{testPath, `"a"`}},
		{"no dtype", file(`{"a":{"shape":[2],"data_offsets":[0,8]}}`, 8), safetensors.ErrFormat, []string{testPath, `"a"`, "dtype"}},
		{"no shape", file(`{"a":{"dtype":"F32","data_offsets":[0,8]}}`, 8), safetensors.ErrFormat, []string{testPath, `"a"`, "shape"}},
		{"no data_offsets", file(`{"a":{"dtype":"F32","shape":[2]}}`, 8), safetensors.ErrFormat, []string{testPath, `"a"`, "data_offsets"}},
		{"dtype twice", file(`{"a":{"dtype":"F32","dtype":"F16","shape":[2],"data_offsets":[0,8]}}`, 8), safetensors.ErrFormat, []string{testPath, `"a"`, "twice"}},
		{"dtype not a string", file(`{"a":{"dtype":32,"shape":[2],"data_offsets":[0,8]}}`, 8), safetensors.ErrFormat, []string{testPath, `"a"`}},
		{"dtype null", file(`{"a":{"dtype":null,"shape":[2],"data_offsets":[0,8]}}`, 8), safetensors.ErrFormat, []string{testPath, `"a"`}},
		{"unknown dtype", file(`{`+entry("a", "F7", "[2]", 0, 8)+`}`, 8), safetensors.ErrDtype, []string{testPath, `"a"`, `"F7"`}},
		{"lower-case dtype", file(`{`+entry("a", "f32", "[2]", 0, 8)+`}`, 8), safetensors.ErrDtype, []string{testPath, `"a"`}},
		{"negative dimension", file(`{`+entry("a", "F32", "[-2]", 0, 8)+`}`, 8), safetensors.ErrFormat, []string{testPath, `"a"`, "-2"}},
		{"fractional dimension", file(`{`+entry("a", "F32", "[2.0]", 0, 8)+`}`, 8), safetensors.ErrFormat, []string{testPath, `"a"`}},
		{"dimension as a string", file(`{`+entry("a", "F32", `["2"]`, 0, 8)+`}`, 8), safetensors.ErrFormat, []string{testPath, `"a"`}},
		{"shape null", file(`{`+entry("a", "F32", `null`, 0, 8)+`}`, 8), safetensors.ErrFormat, []string{testPath, `"a"`}},
		{"dimension over int64", file(`{`+entry("a", "F32", `[9223372036854775808]`, 0, 8)+`}`, 8), safetensors.ErrFormat, []string{testPath, `"a"`}},
		{"shape overflows", file(`{`+entry("a", "F32", `[4294967296,4294967296,16]`, 0, 8)+`}`, 8), safetensors.ErrFormat, []string{testPath, `"a"`, "overflow"}},
		{"bytes overflow", file(`{`+entry("a", "F64", `[2305843009213693952]`, 0, 8)+`}`, 8), safetensors.ErrFormat, []string{testPath, `"a"`, "overflow"}},
		{"size disagrees with shape", file(`{`+entry("a", "F32", "[3]", 0, 8)+`}`, 8), safetensors.ErrFormat, []string{testPath, `"a"`, "needs 12"}},
		{"three offsets", file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8,16]}}`, 8), safetensors.ErrFormat, []string{testPath, `"a"`}},
		{"one offset", file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[8]}}`, 8), safetensors.ErrFormat, []string{testPath, `"a"`}},
		{"negative offset", file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}}`, 8), safetensors.ErrFormat, []string{testPath, `"a"`}},
		{"offsets reversed", file(`{`+entry("a", "F32", "[2]", 8, 0)+`}`, 8), safetensors.ErrFormat, []string{testPath, `"a"`}},
		{"offset beyond int64", file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,18446744073709551615]}}`, 8), safetensors.ErrFormat, []string{testPath, `"a"`}},
		{"overlap", file(`{`+a8+`,`+entry("b", "F32", "[2]", 4, 12)+`}`, 12), safetensors.ErrFormat, []string{testPath, `"a"`, `"b"`, "overlap"}},
		{"same offsets", file(`{`+a8+`,`+entry("b", "F32", "[2]", 0, 8)+`}`, 8), safetensors.ErrFormat, []string{testPath, `"a"`, `"b"`, "overlap"}},
		{"gap", file(`{`+entry("a", "F32", "[1]", 0, 4)+`,`+entry("b", "F32", "[1]", 8, 12)+`}`, 12), safetensors.ErrFormat, []string{testPath, `"b"`, "[4, 8)"}},
		{"first tensor not at 0", file(`{`+entry("a", "F32", "[1]", 4, 8)+`}`, 8), safetensors.ErrFormat, []string{testPath, `"a"`, "[0, 4)"}},
		{"truncated", file(`{`+entry("a", "F32", "[2]", 0, 8)+`,`+entry("b", "F32", "[2]", 8, 16)+`}`, 12), safetensors.ErrFormat, []string{testPath, `"b"`, "truncated"}},
		{"out of range", file(`{`+entry("a", "F32", "[4]", 0, 16)+`}`, 8), safetensors.ErrFormat, []string{testPath, `"a"`, "past the end"}},
		{"bytes after the last tensor", file(`{`+a8+`}`, 12), safetensors.ErrFormat, []string{testPath, "12 bytes"}},
		{"sub-byte size", file(`{`+entry("q", "F4", "[3]", 0, 2)+`}`, 2), safetensors.ErrFormat, []string{testPath, `"q"`, "whole number of bytes"}},
	}
	return append(valid, bad...)
}

func TestOpenHeaders(t *testing.T) {
	for _, tc := range headerCases() {
		f, err, panicked := openBytes(testPath, tc.b)
		switch {
		case panicked != "":
			t.Errorf("%s: panic: %s", tc.name, panicked)
		case tc.want == nil && err != nil:
			t.Errorf("%s: unexpected error: %v", tc.name, err)
		case tc.want == nil:
			checkTiling(t, tc.name, f, int64(len(tc.b)))
		case err == nil:
			t.Errorf("%s: no error, want one wrapping %q", tc.name, tc.want)
		case !errors.Is(err, tc.want):
			t.Errorf("%s: %q does not wrap %q", tc.name, err, tc.want)
		default:
			for _, s := range tc.names {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("%s: %q does not name %s", tc.name, err, s)
				}
			}
		}
	}
}

// openBytes opens b, recovering from a panic.
func openBytes(path string, b []byte) (f *safetensors.File, err error, panicked string) {
	defer func() {
		if r := recover(); r != nil {
			panicked = fmt.Sprintf("%v\n%s", r, debug.Stack())
		}
	}()
	f, err = safetensors.OpenBytes(path, b)
	return f, err, ""
}

// checkTiling checks what a valid header promises: the tensors, in order,
// cover the data section from the end of the header to the end of the
// file, each with the size its dtype and shape give.
func checkTiling(t *testing.T, name string, f *safetensors.File, size int64) {
	t.Helper()
	ts := f.Tensors()
	if len(ts) == 0 {
		return
	}
	for i, info := range ts {
		if got, ok := f.Tensor(info.Name); !ok || got.Offset != info.Offset {
			t.Errorf("%s: Tensor(%q) = %v, %v; Tensors has %v", name, info.Name, got, ok, info)
		}
		if i > 0 && info.Offset != ts[i-1].Offset+ts[i-1].Size {
			t.Errorf("%s: tensor %q begins at %d, the previous ends at %d", name, info.Name, info.Offset, ts[i-1].Offset+ts[i-1].Size)
		}
		if bits := int64(info.Len()) * int64(info.Dtype.Bits()); bits != 8*info.Size {
			t.Errorf("%s: tensor %q: %d elements of %v in %d bytes", name, info.Name, info.Len(), info.Dtype, info.Size)
		}
	}
	last := ts[len(ts)-1]
	if end := last.Offset + last.Size; end != size {
		t.Errorf("%s: the last tensor ends at %d, the file at %d", name, end, size)
	}
}

// TestMetadata checks that the metadata is read and returned as a copy.
func TestMetadata(t *testing.T) {
	f, err := safetensors.OpenBytes(testPath, file(`{"__metadata__":{"format":"pt","x":"<&>"}}`, 0))
	if err != nil {
		t.Fatal(err)
	}
	m := f.Metadata()
	if len(m) != 2 || m["format"] != "pt" || m["x"] != "<&>" {
		t.Fatalf("Metadata() = %v", m)
	}
	m["format"] = "changed"
	if f.Metadata()["format"] != "pt" {
		t.Error("Metadata returns the file's own map")
	}
	f, err = safetensors.OpenBytes(testPath, file(`{}`, 0))
	if err != nil {
		t.Fatal(err)
	}
	if m := f.Metadata(); m != nil {
		t.Errorf("Metadata() of a header without = %v, want nil", m)
	}
}
