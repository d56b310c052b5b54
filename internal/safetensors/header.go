package safetensors

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxHeaderSize is the largest header length, in bytes, that Open accepts:
// the reference implementation's limit (100 MB).
const MaxHeaderSize = 100_000_000

// metadataKey is the header key of the free-form string map.
const metadataKey = "__metadata__"

// header is a parsed and validated header: the tensors sorted by their
// data offsets, and the metadata.
type header struct {
	tensors  []Info
	index    map[string]int // name → position in tensors
	metadata map[string]string
}

// headerError returns an error naming the file and wrapping sentinel.
func headerError(path string, sentinel error, format string, args ...any) error {
	return fmt.Errorf("safetensors: %s: %s: %w", path, fmt.Sprintf(format, args...), sentinel)
}

// parseHeader parses and validates the JSON header hdr of the file at
// path, whose data section (after the header) holds dataLen bytes, and
// which starts at byte dataStart of the file. The rules are the reference
// implementation's (safetensors/src/tensor.rs, Metadata::validate and
// SafeTensors::read_metadata), plus two of its own: a name may appear only
// once (the reference keeps the last), and a key may appear only once in a
// tensor's entry or in the metadata.
//
//   - the header is valid UTF-8 and one JSON object, with nothing but
//     whitespace after it;
//   - "__metadata__", if present, is null or an object of strings;
//   - every other key is a tensor: an object with "dtype" (a name of
//     ParseDtype), "shape" (non-negative integers) and "data_offsets"
//     (two non-negative integers [begin, end), relative to the end of the
//     header); other keys in it are ignored, as the reference does;
//   - sorted by offsets, the tensors tile the data section: the first
//     begins at 0, each begins where the previous one ends (no gap, no
//     overlap), the last ends at the end of the file;
//   - end − begin is the number of elements (the product of the shape, 1
//     for a scalar) times the dtype's size, computed without overflow, in
//     whole bytes.
func parseHeader(path string, hdr []byte, dataStart, dataLen int64) (*header, error) {
	if !utf8.Valid(hdr) {
		return nil, headerError(path, ErrFormat, "header is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(hdr))
	if err := expectDelim(dec, '{'); err != nil {
		return nil, headerError(path, ErrFormat, "header is not a JSON object: %v", early(err))
	}
	h := &header{index: map[string]int{}}
	seenMeta := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, headerError(path, ErrFormat, "header JSON: %v", early(err))
		}
		name := tok.(string) // an object key is always a string
		if name == metadataKey {
			if seenMeta {
				return nil, headerError(path, ErrFormat, "%s appears twice", metadataKey)
			}
			seenMeta = true
			if h.metadata, err = parseMetadata(dec); err != nil {
				return nil, headerError(path, ErrFormat, "%s: %v", metadataKey, early(err))
			}
			continue
		}
		if _, dup := h.index[name]; dup {
			return nil, headerError(path, ErrFormat, "tensor %q appears twice in the header", name)
		}
		info, err := parseInfo(dec)
		if err != nil {
			err = early(err)
			sentinel := ErrFormat
			if errors.Is(err, errUnknownDtype) {
				sentinel = ErrDtype
			}
			return nil, headerError(path, sentinel, "tensor %q: %v", name, err)
		}
		info.Name = name
		info.File = path
		h.index[name] = len(h.tensors)
		h.tensors = append(h.tensors, info)
	}
	if err := expectDelim(dec, '}'); err != nil {
		return nil, headerError(path, ErrFormat, "header JSON: %v", early(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, headerError(path, ErrFormat, "header has data after its JSON object")
	}
	if err := h.validate(path, dataStart, dataLen); err != nil {
		return nil, err
	}
	return h, nil
}

// early rewords the decoder's io.EOF and io.ErrUnexpectedEOF, which
// mean the JSON text ends before its value does.
func early(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("the JSON text ends early")
	}
	return err
}

// expectDelim reads the next token and returns an error unless it is d.
func expectDelim(dec *json.Decoder, d json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok != d {
		return fmt.Errorf("found %v, want %q", describe(tok), string(d))
	}
	return nil
}

// describe names a JSON token for an error message.
func describe(tok json.Token) string {
	switch t := tok.(type) {
	case json.Delim:
		return strconv.Quote(string(t))
	case string:
		return "string " + strconv.Quote(t)
	case nil:
		return "null"
	case float64, json.Number:
		return fmt.Sprintf("number %v", t)
	case bool:
		return fmt.Sprintf("%v", t)
	}
	return fmt.Sprintf("%T %v", tok, tok)
}

// parseMetadata reads the value of "__metadata__": null, or an object of
// strings with distinct keys.
func parseMetadata(dec *json.Decoder) (map[string]string, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if tok == nil {
		return nil, nil
	}
	if tok != json.Delim('{') {
		return nil, fmt.Errorf("found %s, want an object of strings", describe(tok))
	}
	m := map[string]string{}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key := k.(string)
		if _, dup := m[key]; dup {
			return nil, fmt.Errorf("key %q appears twice", key)
		}
		v, err := dec.Token()
		if err != nil {
			return nil, err
		}
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("key %q: found %s, want a string", key, describe(v))
		}
		m[key] = s
	}
	return m, expectDelim(dec, '}')
}

// errUnknownDtype marks parseInfo's error for a dtype name the format does
// not define.
var errUnknownDtype = errors.New("unknown dtype")

// parseInfo reads one tensor's entry: an object with dtype, shape and
// data_offsets. It fills Dtype, Shape, Offset (relative to the data
// section for now) and Size.
func parseInfo(dec *json.Decoder) (Info, error) {
	var info Info
	if err := expectDelim(dec, '{'); err != nil {
		return info, err
	}
	var dtype, shape, offsets json.RawMessage
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return info, err
		}
		key := k.(string)
		var dst *json.RawMessage
		switch key {
		case "dtype":
			dst = &dtype
		case "shape":
			dst = &shape
		case "data_offsets":
			dst = &offsets
		default:
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return info, err
			}
			continue
		}
		if *dst != nil {
			return info, fmt.Errorf("%s appears twice", key)
		}
		if err := dec.Decode(dst); err != nil {
			return info, err
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return info, err
	}
	for _, f := range []struct {
		key string
		raw json.RawMessage
	}{{"dtype", dtype}, {"shape", shape}, {"data_offsets", offsets}} {
		if f.raw == nil {
			return info, fmt.Errorf("no %s", f.key)
		}
	}

	var name string
	if err := json.Unmarshal(dtype, &name); err != nil || dtype[0] != '"' {
		return info, fmt.Errorf("dtype %s is not a string", dtype)
	}
	d, ok := ParseDtype(name)
	if !ok {
		return info, fmt.Errorf("%w %q", errUnknownDtype, name)
	}
	info.Dtype = d

	dims, err := naturals("shape", shape, math.MaxInt64)
	if err != nil {
		return info, err
	}
	info.Shape = make([]int, len(dims))
	for i, v := range dims {
		if v > math.MaxInt {
			return info, fmt.Errorf("shape %s: dimension %d is too large", shape, v)
		}
		info.Shape[i] = int(v)
	}

	offs, err := naturals("data_offsets", offsets, math.MaxUint64)
	if err != nil {
		return info, err
	}
	if len(offs) != 2 {
		return info, fmt.Errorf("data_offsets %s has %d numbers, want 2", offsets, len(offs))
	}
	begin, end := offs[0], offs[1]
	if end < begin {
		return info, fmt.Errorf("data_offsets %s end before they begin", offsets)
	}
	// Offsets beyond the file are reported by validate, which knows its
	// size; here they only must fit an int64.
	if end > math.MaxInt64 {
		return info, fmt.Errorf("data_offsets %s are beyond any file", offsets)
	}
	info.Offset, info.Size = int64(begin), int64(end-begin)

	n, ok := numBytes(info.Dtype, dims)
	if !ok {
		return info, fmt.Errorf("shape %s of %v overflows", shape, info.Dtype)
	}
	if n < 0 {
		return info, fmt.Errorf("shape %s of %v (%d bits each) is not a whole number of bytes", shape, info.Dtype, info.Dtype.Bits())
	}
	if n != info.Size {
		return info, fmt.Errorf("data_offsets %s hold %d bytes, shape %s of %v needs %d", offsets, info.Size, shape, info.Dtype, n)
	}
	return info, nil
}

// naturals parses raw as a JSON array of integers in [0, max].
func naturals(key string, raw json.RawMessage, max uint64) ([]uint64, error) {
	var elems []json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil || raw[0] != '[' {
		return nil, fmt.Errorf("%s %s is not an array of integers", key, raw)
	}
	out := make([]uint64, len(elems))
	for i, e := range elems {
		v, err := strconv.ParseUint(string(e), 10, 64)
		if err != nil || v > max {
			return nil, fmt.Errorf("%s %s: %s is not an integer in [0, %d]", key, raw, e, max)
		}
		out[i] = v
	}
	return out, nil
}

// numBytes returns the size of a tensor of dtype d and shape dims in bytes,
// false if it overflows an int64, and −1 if it is not a whole number of
// bytes (sub-byte dtypes).
func numBytes(d Dtype, dims []uint64) (int64, bool) {
	n := uint64(1)
	for _, v := range dims {
		hi, lo := bits.Mul64(n, v)
		if hi != 0 {
			return 0, false
		}
		n = lo
	}
	hi, nbits := bits.Mul64(n, uint64(d.Bits()))
	if hi != 0 || nbits/8 > math.MaxInt64 {
		return 0, false
	}
	if nbits%8 != 0 {
		return -1, true
	}
	return int64(nbits / 8), true
}

// validate sorts the tensors by offsets and checks that they tile the data
// section exactly; it then makes the offsets absolute.
func (h *header) validate(path string, dataStart, dataLen int64) error {
	slices.SortStableFunc(h.tensors, func(a, b Info) int {
		if a.Offset != b.Offset {
			return cmp.Compare(a.Offset, b.Offset)
		}
		if a.Size != b.Size {
			return cmp.Compare(a.Size, b.Size)
		}
		return strings.Compare(a.Name, b.Name)
	})
	var start int64
	for i, t := range h.tensors {
		end := t.Offset + t.Size
		switch {
		case t.Offset < start:
			prev := h.tensors[i-1]
			return headerError(path, ErrFormat, "tensor %q: data_offsets [%d, %d] overlap tensor %q's [%d, %d]",
				t.Name, t.Offset, end, prev.Name, prev.Offset, prev.Offset+prev.Size)
		case t.Offset > start:
			return headerError(path, ErrFormat, "tensor %q: data_offsets [%d, %d] leave bytes [%d, %d) before it unused",
				t.Name, t.Offset, end, start, t.Offset)
		case end > dataLen:
			return headerError(path, ErrFormat, "tensor %q: data_offsets [%d, %d] run past the end of the file, whose data section has %d bytes (truncated file?)",
				t.Name, t.Offset, end, dataLen)
		}
		start = end
	}
	if start != dataLen {
		return headerError(path, ErrFormat, "the tensors end at byte %d of the data section, but it has %d bytes", start, dataLen)
	}
	for i := range h.tensors {
		h.tensors[i].Offset += dataStart
		h.index[h.tensors[i].Name] = i
	}
	return nil
}
