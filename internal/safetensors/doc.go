// Package safetensors reads and writes the safetensors format of Hugging
// Face checkpoints: 8 bytes holding a little-endian uint64 N, then an
// N-byte JSON header, then the tensors' raw little-endian data:
//
//	{"__metadata__": {"format": "pt"},
//	 "model.norm.weight": {"dtype": "F32", "shape": [64], "data_offsets": [0, 256]}, …}
//
// The offsets are relative to the end of the header. Open reads and
// validates a file's header; File.ReadFloat32 then reads one tensor into
// a caller's []float32 with ReadAt, with no second copy of the data (F32
// straight into the slice's memory, F16 and BF16 widened in place), so a
// loader's peak memory is the weights it keeps; ReadFloat32At reads a
// range of a tensor's elements, for a loader that rearranges a tensor a
// block at a time. OpenIndex and OpenDir open a sharded checkpoint
// (model.safetensors.index.json) as one Set of tensors. Write writes F32
// or BF16 tensors to a new file atomically, from slices or streamed from a
// caller's function (Tensor.Fill).
//
// # Validation
//
// Open follows the reference implementation (huggingface/safetensors,
// safetensors/src/tensor.rs): the header is at most MaxHeaderSize bytes and
// lies within the file; it is UTF-8 JSON; each tensor's dtype is one the
// format defines and its byte size is its shape's product times the dtype
// size, computed without overflow; sorted by offset, the tensors cover the
// data section exactly, with no gap, no overlap and nothing after the last
// one. Two rules are stricter than the reference's: a tensor name, and a
// key within a tensor's entry or the metadata, may appear only once (the
// reference, reading the header into a map, keeps the last), so a header
// never means two things. Errors
// name the file and, where one is at fault, the tensor; they wrap
// ErrFormat, ErrDtype, ErrNotFound, ErrShape or ErrName, or the os
// package's error for a file that cannot be opened or read. Nothing panics
// on any input (FuzzParseHeader).
//
// # Why not a library
//
// github.com/nlpodyssey/safetensors (BSD-2-Clause, v0.0.0-20250209183917,
// the Go port of the reference) builds with Go 1.26 and survived two
// million fuzzed inputs without a panic, but it does not fit: Deserialize
// takes the whole file as one []byte, so a loader would either read it all
// (a second copy of the weights) or mmap it, whose touched pages count in
// the resident set beside the float32 copy; it keeps the last of two
// tensors with the same name without a word; it refuses the whole header of
// a file holding an F8 or F4 tensor; and its errors name neither the file
// nor, for a size mismatch, the tensor. github.com/maruel/safetensors
// (a fork with mmap) is not served by the module proxy here, and
// github.com/gomlx/go-huggingface's reader checks no offsets and pulls in
// GoMLX.
package safetensors

import "errors"

var (
	// ErrFormat reports a malformed file: a bad header length, a header
	// that is not valid JSON or breaks the format's rules, offsets that
	// overlap, leave gaps or run past the end of the file.
	ErrFormat = errors.New("malformed safetensors file")
	// ErrDtype reports a dtype the format does not define (Open), or one a
	// function does not handle: ReadFloat32 reads F32, F16 and BF16, Write
	// writes F32 and BF16.
	ErrDtype = errors.New("unsupported dtype")
	// ErrNotFound reports a tensor name the file or set does not hold.
	ErrNotFound = errors.New("no such tensor")
	// ErrShape reports a destination of the wrong length, or a tensor given
	// to Write whose shape is negative, overflows or disagrees with its data.
	ErrShape = errors.New("wrong shape")
	// ErrName reports a tensor given to Write under a name used twice or
	// reserved ("__metadata__"), or a bad shard name in an index.
	ErrName = errors.New("bad tensor name")
)
