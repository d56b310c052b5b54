package safetensors

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"unsafe"
)

// Info describes one tensor of a file.
type Info struct {
	Name   string
	Dtype  Dtype
	Shape  []int // empty for a scalar
	File   string
	Offset int64 // where the data begins in File, in bytes from its start
	Size   int64 // bytes of data
}

// Len returns the number of elements: the product of the shape, 1 for a
// scalar.
func (t Info) Len() int {
	n := 1
	for _, d := range t.Shape {
		n *= d // exact: Open checked that the product fits (if it is not 0)
	}
	return n
}

func (t Info) clone() Info {
	t.Shape = append([]int(nil), t.Shape...)
	return t
}

// File is an open safetensors file whose header has been read and
// validated; tensors are read from it on demand. Its methods are safe to
// call from many goroutines (reads use ReadAt), except Close.
type File struct {
	path string
	f    readerAtCloser
	h    *header
}

type readerAtCloser interface {
	io.ReaderAt
	io.Closer
}

// Open opens the safetensors file at path, and reads and validates its
// header (see the package doc for the rules). It reads no tensor data.
//
// The error names the file, and the tensor where one is at fault; it wraps
// ErrFormat for a malformed file, ErrDtype for an unknown dtype, and the
// os package's error (fs.ErrNotExist, fs.ErrPermission …) for a file that
// cannot be opened or read.
func Open(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	st, err := f.Stat()
	if err == nil && !st.Mode().IsRegular() {
		err = headerError(path, ErrFormat, "not a regular file")
	} else if err != nil {
		err = fmt.Errorf("safetensors: %w", err)
	}
	var h *header
	if err == nil {
		h, err = readHeader(path, f, st.Size())
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return &File{path: path, f: f, h: h}, nil
}

// readHeader reads the length prefix and the header of the file at path,
// read through f, of size bytes, and parses it.
func readHeader(path string, f io.ReaderAt, size int64) (*header, error) {
	if size < 8 {
		return nil, headerError(path, ErrFormat, "file has %d bytes, too few for the 8-byte header length", size)
	}
	var prefix [8]byte
	if _, err := f.ReadAt(prefix[:], 0); err != nil {
		return nil, fmt.Errorf("safetensors: %s: reading the header length: %w", path, err)
	}
	n := binary.LittleEndian.Uint64(prefix[:])
	if n > MaxHeaderSize {
		return nil, headerError(path, ErrFormat, "header length %d exceeds the limit of %d bytes", n, MaxHeaderSize)
	}
	if int64(n) > size-8 {
		return nil, headerError(path, ErrFormat, "header length %d runs past the end of the file (%d bytes)", n, size)
	}
	hdr := make([]byte, n)
	if _, err := f.ReadAt(hdr, 8); err != nil && n > 0 {
		return nil, fmt.Errorf("safetensors: %s: reading the header: %w", path, err)
	}
	return parseHeader(path, hdr, 8+int64(n), size-8-int64(n))
}

// Path returns the path the file was opened with.
func (f *File) Path() string { return f.path }

// Tensors returns the tensors in the order of their data in the file.
func (f *File) Tensors() []Info {
	out := make([]Info, len(f.h.tensors))
	for i, t := range f.h.tensors {
		out[i] = t.clone()
	}
	return out
}

// Tensor returns the tensor called name, and whether there is one.
func (f *File) Tensor(name string) (Info, bool) {
	i, ok := f.h.index[name]
	if !ok {
		return Info{}, false
	}
	return f.h.tensors[i].clone(), true
}

// Metadata returns a copy of the header's "__metadata__" map (nil if it
// has none).
func (f *File) Metadata() map[string]string { return maps.Clone(f.h.metadata) }

// Close closes the file.
func (f *File) Close() error { return f.f.Close() }

// info returns the tensor called name or an error wrapping ErrNotFound.
func (f *File) info(name string) (Info, error) {
	i, ok := f.h.index[name]
	if !ok {
		return Info{}, fmt.Errorf("safetensors: %s: no tensor %q: %w", f.path, name, ErrNotFound)
	}
	return f.h.tensors[i], nil
}

// ReadFloat32 reads the tensor called name into dst, converting F32, F16
// and BF16 to float32 exactly (see HalfToFloat32 and BFloat16ToFloat32;
// NaNs keep their sign and payload, F16 signalling NaNs are made quiet).
// len(dst) must be the tensor's number of elements.
//
// It holds no copy of the data beside dst: F32 bytes are read straight
// into dst's memory, and F16/BF16 bytes into its upper half, then widened
// in place from the front (element i is written at bytes 4i…4i+3, below
// the bytes 2n+2j of every element j ≥ i still to be read).
//
// The error names the file and the tensor and wraps ErrNotFound, ErrDtype
// (another dtype), ErrShape (a wrong len(dst)) or the I/O error (a file
// shortened since Open gives io.ErrUnexpectedEOF). After an error, dst
// holds unspecified values.
func (f *File) ReadFloat32(name string, dst []float32) error {
	t, err := f.info(name)
	if err != nil {
		return err
	}
	if n := t.Len(); len(dst) != n {
		return fmt.Errorf("safetensors: %s: tensor %q has %d elements (shape %v), destination %d: %w", f.path, t.Name, n, t.Shape, len(dst), ErrShape)
	}
	return f.readFloat32(t, dst, 0)
}

// ReadFloat32At reads the elements [start, start+len(dst)) of the tensor
// called name (in row-major order) into dst, as ReadFloat32 reads the
// whole tensor: a reader that rearranges a tensor (a transpose, say) can
// take it a block of rows at a time, holding no copy of the whole tensor.
// It returns an error wrapping ErrShape if the range is not within the
// tensor, and ReadFloat32's errors otherwise.
func (f *File) ReadFloat32At(name string, dst []float32, start int) error {
	t, err := f.info(name)
	if err != nil {
		return err
	}
	if n := t.Len(); start < 0 || start > n || len(dst) > n-start {
		return fmt.Errorf("safetensors: %s: tensor %q has %d elements (shape %v), elements [%d, %d) asked for: %w", f.path, t.Name, n, t.Shape, start, start+len(dst), ErrShape)
	}
	return f.readFloat32(t, dst, start)
}

// readFloat32 reads the elements [start, start+len(dst)) of t, which the
// callers have checked lie within it, into dst.
func (f *File) readFloat32(t Info, dst []float32, start int) error {
	if t.Dtype != F32 && t.Dtype != F16 && t.Dtype != BF16 {
		return fmt.Errorf("safetensors: %s: tensor %q: %w %v (want F32, F16 or BF16)", f.path, t.Name, ErrDtype, t.Dtype)
	}
	n := len(dst)
	if n == 0 {
		return nil
	}
	size := int64(t.Dtype.Bits() / 8)
	off := t.Offset + size*int64(start)
	buf := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(dst))), 4*n)
	switch t.Dtype {
	case F32:
		if err := f.readAt(t, buf, off); err != nil {
			return err
		}
		if !littleEndian {
			for i := range dst {
				dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(buf[4*i:]))
			}
		}
	case F16, BF16:
		src := buf[2*n:]
		if err := f.readAt(t, src, off); err != nil {
			return err
		}
		widen(t.Dtype, dst, src)
	}
	return nil
}

// widen converts the n = len(dst) little-endian F16 or BF16 values in src,
// the upper half of dst's own memory, to float32 in dst, from the front.
func widen(dt Dtype, dst []float32, src []byte) {
	n := len(dst)
	if !littleEndian {
		for i := range dst {
			h := binary.LittleEndian.Uint16(src[2*i:])
			if dt == BF16 {
				dst[i] = BFloat16ToFloat32(h)
			} else {
				dst[i] = HalfToFloat32(h)
			}
		}
		return
	}
	// On a little-endian machine the bytes are native uint16s; each loop
	// reads element i before it writes element i, and the write never
	// reaches an element not yet read.
	h := unsafe.Slice((*uint16)(unsafe.Pointer(unsafe.SliceData(src))), n)
	if dt == BF16 {
		bits := unsafe.Slice((*uint32)(unsafe.Pointer(unsafe.SliceData(dst))), n)
		for i, v := range h {
			bits[i] = uint32(v) << 16
		}
		return
	}
	for i, v := range h {
		dst[i] = HalfToFloat32(v)
	}
}

// ReadRaw reads the bytes of the tensor called name, as stored
// (little-endian), into dst, which must hold exactly Info.Size bytes. It
// reads tensors of any dtype.
func (f *File) ReadRaw(name string, dst []byte) error {
	t, err := f.info(name)
	if err != nil {
		return err
	}
	if int64(len(dst)) != t.Size {
		return fmt.Errorf("safetensors: %s: tensor %q has %d bytes, destination %d: %w", f.path, t.Name, t.Size, len(dst), ErrShape)
	}
	return f.readAt(t, dst, t.Offset)
}

// readAt fills dst with bytes of t's data from offset off of the file.
func (f *File) readAt(t Info, dst []byte, off int64) error {
	if _, err := f.f.ReadAt(dst, off); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("safetensors: %s: tensor %q: reading %d bytes at offset %d: %w", f.path, t.Name, len(dst), off, err)
	}
	return nil
}

// littleEndian reports whether this machine stores numbers little-endian,
// like the format, so that F32 data can be used as read.
var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1
