package safetensors

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"unicode/utf8"
	"unsafe"

	"github.com/actq/actq/internal/atomicfile"
)

// Tensor is a tensor to write: float32 data in row-major order, stored as
// Dtype (F32 when zero, or BF16).
type Tensor struct {
	Name  string
	Shape []int // empty for a scalar
	Data  []float32
	Dtype Dtype
	// Fill, if not nil, supplies the data in place of Data, which must
	// then be nil: Write calls Fill(dst, start) on consecutive chunks of a
	// small buffer, dst to receive the elements [start, start+len(dst)) of
	// the row-major data. A tensor held in another layout or dtype (a
	// transposed matrix, float64 values) is written this way without a
	// converted copy of it.
	Fill func(dst []float32, start int)
}

// len returns the number of elements of t's data.
func (t Tensor) len() int {
	if t.Fill != nil {
		n := 1
		for _, d := range t.Shape {
			n *= d // Write has checked that the product fits
		}
		return n
	}
	return len(t.Data)
}

// Write writes tensors and metadata (which may be nil) to a safetensors
// file at path, replacing any file there. The file is written under a
// temporary name in the same directory and renamed when complete, so a
// failed Write leaves no partial file (and an existing one untouched).
//
// The layout is the reference writer's, so the same tensors give the same
// bytes: tensors sorted by dtype size, larger first, then by name; the
// header's "__metadata__" first (keys sorted), then the tensors in that
// order; the header padded with spaces to a multiple of 8 bytes, so every
// tensor's data starts 8-byte aligned when the tensors before it are.
// Hugging Face transformers refuses a model file whose metadata names
// another "format" than "pt" (and several of its versions one with no
// metadata), so a checkpoint for it passes {"format": "pt"}.
//
// BF16 data is rounded to nearest, ties to even (Float32ToBFloat16).
//
// It returns an error wrapping ErrName for a tensor name used twice or
// reserved, or a name or metadata string that is not valid UTF-8; ErrDtype
// for a dtype other than F32 and BF16; ErrShape for a negative dimension,
// a shape whose product overflows or (without Fill) is not len(Data), or
// both Data and Fill given. Nothing is written then.
func Write(path string, tensors []Tensor, metadata map[string]string) error {
	fail := func(sentinel error, format string, args ...any) error {
		return fmt.Errorf("safetensors: writing %s: %s: %w", path, fmt.Sprintf(format, args...), sentinel)
	}
	for k, v := range metadata {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return fail(ErrName, "metadata %q: %q is not valid UTF-8", k, v)
		}
	}
	order := make([]Tensor, len(tensors))
	seen := make(map[string]bool, len(tensors))
	for i, t := range tensors {
		switch {
		case t.Name == metadataKey:
			return fail(ErrName, "tensor name %q is reserved", t.Name)
		case seen[t.Name]:
			return fail(ErrName, "tensor %q given twice", t.Name)
		case !utf8.ValidString(t.Name):
			return fail(ErrName, "tensor name %q is not valid UTF-8", t.Name)
		}
		seen[t.Name] = true
		if t.Dtype == 0 {
			t.Dtype = F32
		}
		if t.Dtype != F32 && t.Dtype != BF16 {
			return fail(ErrDtype, "tensor %q: dtype %v (want F32 or BF16)", t.Name, t.Dtype)
		}
		n := uint64(1)
		for _, d := range t.Shape {
			if d < 0 {
				return fail(ErrShape, "tensor %q: shape %v has a negative dimension", t.Name, t.Shape)
			}
			hi, lo := bits.Mul64(n, uint64(d))
			if hi != 0 {
				return fail(ErrShape, "tensor %q: shape %v overflows", t.Name, t.Shape)
			}
			n = lo
		}
		switch {
		case t.Fill != nil && t.Data != nil:
			return fail(ErrShape, "tensor %q: both Data and Fill are given", t.Name)
		case t.Fill != nil && n > math.MaxInt:
			return fail(ErrShape, "tensor %q: shape %v overflows", t.Name, t.Shape)
		case t.Fill == nil && n != uint64(len(t.Data)):
			return fail(ErrShape, "tensor %q: shape %v holds %d elements, data %d", t.Name, t.Shape, n, len(t.Data))
		}
		order[i] = t
	}
	slices.SortFunc(order, func(a, b Tensor) int {
		if c := cmp.Compare(b.Dtype.Bits(), a.Dtype.Bits()); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	})
	hdr := encodeHeader(order, metadata)
	return atomicfile.Write(path, 0o644, func(w *bufio.Writer) error {
		if err := binary.Write(w, binary.LittleEndian, uint64(len(hdr))); err != nil {
			return err
		}
		if _, err := w.Write(hdr); err != nil {
			return err
		}
		for _, t := range order {
			if err := writeData(w, t); err != nil {
				return fmt.Errorf("safetensors: writing %s: tensor %q: %w", path, t.Name, err)
			}
		}
		return nil
	})
}

// encodeHeader returns the JSON header for tensors, in their order,
// padded with spaces to a multiple of 8 bytes.
func encodeHeader(tensors []Tensor, metadata map[string]string) []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	if len(metadata) > 0 {
		writeString(&b, metadataKey)
		b.WriteString(":{")
		for i, k := range slices.Sorted(maps.Keys(metadata)) {
			if i > 0 {
				b.WriteByte(',')
			}
			writeString(&b, k)
			b.WriteByte(':')
			writeString(&b, metadata[k])
		}
		b.WriteByte('}')
	}
	var off int64
	for i, t := range tensors {
		if i > 0 || len(metadata) > 0 {
			b.WriteByte(',')
		}
		writeString(&b, t.Name)
		b.WriteString(`:{"dtype":"` + t.Dtype.String() + `","shape":[`)
		for j, d := range t.Shape {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Itoa(d))
		}
		size := int64(t.len()) * int64(t.Dtype.Bits()/8)
		fmt.Fprintf(&b, `],"data_offsets":[%d,%d]}`, off, off+size)
		off += size
	}
	b.WriteByte('}')
	for b.Len()%8 != 0 {
		b.WriteByte(' ')
	}
	return b.Bytes()
}

// writeString writes s as a JSON string, with <, > and & as themselves (as
// the reference writer does) rather than escaped.
func writeString(b *bytes.Buffer, s string) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	enc.Encode(s)           // a string always encodes
	b.Truncate(b.Len() - 1) // Encode's newline
}

// writeData writes t's data in its dtype, little-endian.
func writeData(w *bufio.Writer, t Tensor) error {
	if t.Fill == nil && t.Dtype == F32 && littleEndian {
		_, err := w.Write(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(t.Data))), 4*len(t.Data)))
		return err
	}
	fill := t.Fill
	if fill == nil {
		fill = func(dst []float32, start int) { copy(dst, t.Data[start:]) }
	}
	var vals [1024]float32
	var buf [4 * len(vals)]byte
	size := t.Dtype.Bits() / 8
	for start, n := 0, t.len(); start < n; start += len(vals) {
		chunk := vals[:min(n-start, len(vals))]
		fill(chunk, start)
		for i, v := range chunk {
			if t.Dtype == F32 {
				binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
			} else {
				binary.LittleEndian.PutUint16(buf[2*i:], Float32ToBFloat16(v))
			}
		}
		if _, err := w.Write(buf[:size*len(chunk)]); err != nil {
			return err
		}
	}
	return nil
}
