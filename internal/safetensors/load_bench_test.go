package safetensors_test

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/actq/actq/internal/hf"
	"github.com/actq/actq/internal/peakmem"
	"github.com/actq/actq/internal/safetensors"
)

// benchConfig is the layout of the generated checkpoint: a Llama of 75M
// parameters (300 MB in F32, 150 MB in BF16), shaped like a small real one.
var benchConfig = hf.Config{
	ModelType: "llama", HiddenSize: 768, IntermediateSize: 2048, NumAttentionHeads: 12, NumKeyValueHeads: 4,
	NumHiddenLayers: 8, HeadDim: 64, RMSNormEps: 1e-5, RopeTheta: 10000, VocabSize: 16000,
	MaxPositionEmbeddings: 2048, HiddenAct: "silu",
}

// BenchmarkLoad measures what loading a checkpoint costs: it writes one of
// about 325 MB (F32) or 163 MB (BF16) to a temporary directory, then, in a
// child process per iteration (so that the benchmark's own memory does not
// count), opens it and reads every tensor into a new []float32 kept until
// the end, as a loader does. It reports the child's peak resident set
// (VmHWM) against the file and the float32 weights, the peak minus the
// weights and the child's resident set before loading ("overhead"), and
// the throughput in file MB/s: "warm" with the file in the page cache,
// "cold" after dropping it from the cache (posix_fadvise DONTNEED).
//
//	go test -run '^$' -bench Load -benchtime 5x ./internal/safetensors
func BenchmarkLoad(b *testing.B) {
	dir := b.TempDir()
	for _, dt := range []safetensors.Dtype{safetensors.F32, safetensors.BF16} {
		path := filepath.Join(dir, dt.String()+".safetensors")
		if err := writeBenchCheckpoint(path, dt); err != nil {
			b.Fatal(err)
		}
		for _, cold := range []bool{false, true} {
			name := dt.String() + "/warm"
			if cold {
				name = dt.String() + "/cold"
			}
			b.Run(name, func(b *testing.B) {
				var rs []peakmem.Result
				for b.Loop() {
					r, err := peakmem.Run("TestLoadChild", path, cold)
					if err != nil {
						b.Fatal(err)
					}
					rs = append(rs, r)
				}
				st, err := os.Stat(path)
				if err != nil {
					b.Fatal(err)
				}
				peakmem.Report(b, st.Size(), rs)
			})
		}
	}
}

// writeBenchCheckpoint writes benchConfig's tensors, all views of one
// buffer of random values, in dtype dt.
func writeBenchCheckpoint(path string, dt safetensors.Dtype) error {
	specs := benchConfig.Tensors()
	largest := 0
	for _, s := range specs {
		largest = max(largest, numel(s.Shape))
	}
	buf := make([]float32, largest)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range buf {
		buf[i] = float32(r.NormFloat64() * 0.02)
	}
	ts := make([]safetensors.Tensor, len(specs))
	for i, s := range specs {
		ts[i] = safetensors.Tensor{Name: s.Name, Shape: s.Shape, Data: buf[:numel(s.Shape)], Dtype: dt}
	}
	return safetensors.Write(path, ts, map[string]string{"format": "pt"})
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// TestLoadChild is BenchmarkLoad's child process; it does nothing unless
// the benchmark starts it (through peakmem.Run).
func TestLoadChild(t *testing.T) {
	path, ok, err := peakmem.Child()
	if !ok {
		t.Skip("run by BenchmarkLoad")
	}
	if err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var weights [][]float32
	err = peakmem.Measure(func() (int64, error) {
		var n int64
		for _, info := range f.Tensors() {
			dst := make([]float32, info.Len())
			if err := f.ReadFloat32(info.Name, dst); err != nil {
				return 0, err
			}
			weights = append(weights, dst)
			n += 4 * int64(len(dst))
		}
		return n, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	runtime.KeepAlive(weights)
}
