package safetensors

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

// The file names of a Hugging Face checkpoint's weights: one file, or
// shards listed by an index.
const (
	ModelFile = "model.safetensors"
	IndexFile = "model.safetensors.index.json"
)

// Set is the tensors of a checkpoint as one collection, whether they are in
// one file or sharded over several. Its methods are safe to call from many
// goroutines, except Close.
type Set struct {
	files  []*File
	byName map[string]*File
	order  []Info
}

// OpenDir opens the weights of the checkpoint in directory dir: ModelFile
// if it exists (as Hugging Face transformers looks for it first), else the
// shards listed by IndexFile. The error wraps fs.ErrNotExist if there is
// neither.
func OpenDir(dir string) (*Set, error) {
	path := filepath.Join(dir, ModelFile)
	f, err := Open(path)
	switch {
	case err == nil:
		return newSet([]*File{f}), nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	index := filepath.Join(dir, IndexFile)
	if _, err := os.Stat(index); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("safetensors: %s holds neither %s nor %s: %w", dir, ModelFile, IndexFile, fs.ErrNotExist)
	}
	return OpenIndex(index)
}

// OpenIndex opens a sharded checkpoint from its index, a JSON file such as
//
//	{"metadata": {"total_size": 1024},
//	 "weight_map": {"model.norm.weight": "model-00002-of-00002.safetensors", …}}
//
// whose weight_map gives the file of each tensor, a plain file name in the
// index's directory. Each shard is opened and validated (see Open), and
// the index must agree with the shards: every tensor it lists is in the
// shard it names, and every tensor of a shard is listed there. "metadata"
// is not read.
//
// The error names the index, the shard and the tensor at fault; it wraps
// ErrFormat for broken JSON or a disagreement, ErrName for a shard name
// that is not a plain file name, and Open's errors for the shards.
func OpenIndex(path string) (*Set, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	weights, err := parseIndex(data)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %s: %w", path, err)
	}
	var shards []string
	for name, shard := range weights {
		if shard != filepath.Base(shard) || !filepath.IsLocal(shard) {
			return nil, fmt.Errorf("safetensors: %s: tensor %q: shard %q is not a file name in the index's directory: %w", path, name, shard, ErrName)
		}
		if !slices.Contains(shards, shard) {
			shards = append(shards, shard)
		}
	}
	slices.Sort(shards)
	dir := filepath.Dir(path)
	files := make([]*File, 0, len(shards))
	closeAll := func() {
		for _, f := range files {
			f.Close()
		}
	}
	for _, shard := range shards {
		f, err := Open(filepath.Join(dir, shard))
		if err != nil {
			closeAll()
			return nil, err
		}
		files = append(files, f)
		for _, t := range f.h.tensors {
			if want, ok := weights[t.Name]; !ok || want != shard {
				closeAll()
				if !ok {
					return nil, fmt.Errorf("safetensors: %s: shard %s holds tensor %q, which the index does not list: %w", path, shard, t.Name, ErrFormat)
				}
				return nil, fmt.Errorf("safetensors: %s: shard %s holds tensor %q, which the index puts in %s: %w", path, shard, t.Name, want, ErrFormat)
			}
		}
	}
	s := newSet(files)
	for name, shard := range weights {
		if _, ok := s.byName[name]; !ok {
			closeAll()
			return nil, fmt.Errorf("safetensors: %s: tensor %q is not in shard %s, where the index puts it: %w", path, name, shard, ErrFormat)
		}
	}
	return s, nil
}

// parseIndex returns the weight_map of an index file, refusing a name
// listed twice.
func parseIndex(data []byte) (map[string]string, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := expectDelim(dec, '{'); err != nil {
		return nil, fmt.Errorf("not a JSON object: %v: %w", early(err), ErrFormat)
	}
	var weights map[string]string
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("JSON: %v: %w", early(err), ErrFormat)
		}
		if k.(string) != "weight_map" {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return nil, fmt.Errorf("JSON: %v: %w", early(err), ErrFormat)
			}
			continue
		}
		if weights != nil {
			return nil, fmt.Errorf("weight_map appears twice: %w", ErrFormat)
		}
		if weights, err = parseMetadata(dec); err != nil {
			return nil, fmt.Errorf("weight_map: %v: %w", early(err), ErrFormat)
		}
		if weights == nil {
			weights = map[string]string{}
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return nil, fmt.Errorf("JSON: %v: %w", early(err), ErrFormat)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("data after the JSON object: %w", ErrFormat)
	}
	if weights == nil {
		return nil, fmt.Errorf("no weight_map: %w", ErrFormat)
	}
	return weights, nil
}

// newSet makes a Set of files, whose tensors have distinct names.
func newSet(files []*File) *Set {
	s := &Set{files: files, byName: map[string]*File{}}
	for _, f := range files {
		for _, t := range f.h.tensors {
			s.byName[t.Name] = f
			s.order = append(s.order, t)
		}
	}
	return s
}

// Tensors returns the tensors of every file: file by file (shards in
// name order), each in the order of its data.
func (s *Set) Tensors() []Info {
	out := make([]Info, len(s.order))
	for i, t := range s.order {
		out[i] = t.clone()
	}
	return out
}

// Tensor returns the tensor called name, and whether there is one.
func (s *Set) Tensor(name string) (Info, bool) {
	f, ok := s.byName[name]
	if !ok {
		return Info{}, false
	}
	return f.Tensor(name)
}

// Files returns the open files of the set, in the order of Tensors.
func (s *Set) Files() []*File { return slices.Clone(s.files) }

// ReadFloat32 reads the tensor called name into dst, as File.ReadFloat32
// does.
func (s *Set) ReadFloat32(name string, dst []float32) error {
	f, err := s.file(name)
	if err != nil {
		return err
	}
	return f.ReadFloat32(name, dst)
}

// ReadFloat32At reads the elements [start, start+len(dst)) of the tensor
// called name into dst, as File.ReadFloat32At does.
func (s *Set) ReadFloat32At(name string, dst []float32, start int) error {
	f, err := s.file(name)
	if err != nil {
		return err
	}
	return f.ReadFloat32At(name, dst, start)
}

// ReadRaw reads the bytes of the tensor called name into dst, as
// File.ReadRaw does.
func (s *Set) ReadRaw(name string, dst []byte) error {
	f, err := s.file(name)
	if err != nil {
		return err
	}
	return f.ReadRaw(name, dst)
}

func (s *Set) file(name string) (*File, error) {
	f, ok := s.byName[name]
	if !ok {
		return nil, fmt.Errorf("safetensors: no tensor %q in %s: %w", name, s.describe(), ErrNotFound)
	}
	return f, nil
}

// describe names the set's files for an error message.
func (s *Set) describe() string {
	switch len(s.files) {
	case 0:
		return "an empty set of files"
	case 1:
		return s.files[0].path
	}
	return fmt.Sprintf("%s and %d other shards", s.files[0].path, len(s.files)-1)
}

// Close closes every file and returns the first error.
func (s *Set) Close() error {
	var first error
	for _, f := range s.files {
		if err := f.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
