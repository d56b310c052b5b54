package safetensors_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/actq/actq/internal/safetensors"
)

// shardedDir writes two shards and returns their directory.
func shardedDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	s1 := []safetensors.Tensor{{Name: "a", Shape: []int{2}, Data: []float32{1, 2}}, {Name: "b", Shape: []int{1}, Data: []float32{3}, Dtype: safetensors.BF16}}
	s2 := []safetensors.Tensor{{Name: "c", Shape: []int{2, 2}, Data: []float32{4, 5, 6, 7}}}
	for name, ts := range map[string][]safetensors.Tensor{"model-00001-of-00002.safetensors": s1, "model-00002-of-00002.safetensors": s2} {
		if err := safetensors.Write(filepath.Join(dir, name), ts, map[string]string{"format": "pt"}); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const goodIndex = `{"metadata": {"total_size": 26}, "weight_map": {
	"a": "model-00001-of-00002.safetensors",
	"b": "model-00001-of-00002.safetensors",
	"c": "model-00002-of-00002.safetensors"}}`

func TestOpenIndex(t *testing.T) {
	dir := shardedDir(t)
	index := filepath.Join(dir, safetensors.IndexFile)
	os.WriteFile(index, []byte(goodIndex), 0o644)
	for _, open := range []func() (*safetensors.Set, error){
		func() (*safetensors.Set, error) { return safetensors.OpenIndex(index) },
		func() (*safetensors.Set, error) { return safetensors.OpenDir(dir) },
	} {
		s, err := open()
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, info := range s.Tensors() {
			names = append(names, info.Name+"@"+filepath.Base(info.File))
		}
		if got, want := strings.Join(names, " "), "a@model-00001-of-00002.safetensors b@model-00001-of-00002.safetensors c@model-00002-of-00002.safetensors"; got != want {
			t.Errorf("Tensors: %s, want %s", got, want)
		}
		if len(s.Files()) != 2 {
			t.Errorf("%d files", len(s.Files()))
		}
		dst := make([]float32, 4)
		if err := s.ReadFloat32("c", dst); err != nil || dst[3] != 7 {
			t.Errorf("ReadFloat32(c) = %v, %v", dst, err)
		}
		one := make([]float32, 1)
		if err := s.ReadFloat32("b", one); err != nil || one[0] != 3 {
			t.Errorf("ReadFloat32(b) = %v, %v", one, err)
		}
		if info, ok := s.Tensor("c"); !ok || info.Len() != 4 {
			t.Errorf("Tensor(c) = %v, %v", info, ok)
		}
		if err := s.ReadFloat32("d", one); !errors.Is(err, safetensors.ErrNotFound) || !strings.Contains(err.Error(), `"d"`) {
			t.Errorf("ReadFloat32(d) = %v", err)
		}
		raw := make([]byte, 8)
		if err := s.ReadRaw("a", raw); err != nil {
			t.Errorf("ReadRaw(a): %v", err)
		}
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	}
}

func TestOpenDirSingleFile(t *testing.T) {
	dir := t.TempDir()
	if _, err := safetensors.OpenDir(dir); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), dir) {
		t.Errorf("OpenDir(empty dir) = %v", err)
	}
	path := filepath.Join(dir, safetensors.ModelFile)
	if err := safetensors.Write(path, []safetensors.Tensor{{Name: "w", Shape: []int{1}, Data: []float32{1}}}, nil); err != nil {
		t.Fatal(err)
	}
	s, err := safetensors.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if ts := s.Tensors(); len(ts) != 1 || ts[0].Name != "w" || ts[0].File != path {
		t.Errorf("Tensors() = %v", ts)
	}
	// A broken model file is reported, not skipped for an index.
	os.WriteFile(path, []byte("garbage!!"), 0o644)
	os.WriteFile(filepath.Join(dir, safetensors.IndexFile), []byte(`{"weight_map":{}}`), 0o644)
	if _, err := safetensors.OpenDir(dir); !errors.Is(err, safetensors.ErrFormat) || !strings.Contains(err.Error(), path) {
		t.Errorf("OpenDir with a broken model file = %v", err)
	}
}

func TestOpenIndexErrors(t *testing.T) {
	dir := shardedDir(t)
	const s1, s2 = "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"
	for _, tc := range []struct {
		name, index string
		want        error
		names       []string
	}{
		{"broken JSON", `{"weight_map": {"a": `, safetensors.ErrFormat, nil},
		{"not an object", `[]`, safetensors.ErrFormat, nil},
		{"data after the object", `{"weight_map":{}} x`, safetensors.ErrFormat, nil},
		{"no weight_map", `{"metadata": {}}`, safetensors.ErrFormat, []string{"weight_map"}},
		{"weight_map twice", `{"weight_map":{},"weight_map":{}}`, safetensors.ErrFormat, []string{"twice"}},
		{"name listed twice", `{"weight_map": {"a": "` + s1 + `", "a": "` + s1 + `"}}`, safetensors.ErrFormat, []string{`"a"`}},
		{"shard not a string", `{"weight_map": {"a": 1}}`, safetensors.ErrFormat, []string{`"a"`}},
		{"shard outside the directory", `{"weight_map": {"a": "../x.safetensors"}}`, safetensors.ErrName, []string{`"a"`, "../x.safetensors"}},
		{"shard with a directory", `{"weight_map": {"a": "sub/x.safetensors"}}`, safetensors.ErrName, []string{`"a"`}},
		{"missing shard", `{"weight_map": {"a": "nope.safetensors"}}`, fs.ErrNotExist, []string{"nope.safetensors"}},
		{"tensor not in its shard", `{"weight_map": {"a": "` + s1 + `", "b": "` + s1 + `", "c": "` + s2 + `", "d": "` + s2 + `"}}`, safetensors.ErrFormat, []string{`"d"`, s2}},
		{"shard holds an unlisted tensor", `{"weight_map": {"a": "` + s1 + `", "c": "` + s2 + `"}}`, safetensors.ErrFormat, []string{`"b"`, s1}},
		{"tensor in another shard", `{"weight_map": {"a": "` + s1 + `", "b": "` + s1 + `", "c": "` + s1 + `"}}`, safetensors.ErrFormat, []string{`"c"`, s1}},
	} {
		index := filepath.Join(dir, "idx.json")
		os.WriteFile(index, []byte(tc.index), 0o644)
		_, err := safetensors.OpenIndex(index)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
			continue
		}
		if !strings.Contains(err.Error(), dir) {
			t.Errorf("%s: %q does not name the file", tc.name, err)
		}
		for _, s := range tc.names {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("%s: %q does not name %s", tc.name, err, s)
			}
		}
	}
	if _, err := safetensors.OpenIndex(filepath.Join(dir, "missing.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("OpenIndex(missing) = %v", err)
	}
}

// TestConcurrentReads reads every tensor of a sharded set from its own
// goroutine, twice over (run with -race).
func TestConcurrentReads(t *testing.T) {
	dir := shardedDir(t)
	os.WriteFile(filepath.Join(dir, safetensors.IndexFile), []byte(goodIndex), 0o644)
	s, err := safetensors.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for range 2 {
		for _, info := range s.Tensors() {
			wg.Go(func() {
				dst := make([]float32, info.Len())
				if err := s.ReadFloat32(info.Name, dst); err != nil {
					errs <- err
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
