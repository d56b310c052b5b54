package graph

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/actq/actq/internal/peakmem"
	"github.com/actq/actq/internal/safetensors"
	"gorgonia.org/tensor"
)

// hfBenchConfig is the model of BenchmarkLoadHF: a Llama of 75M parameters
// (300 MB in F32), shaped like a small real one, with its own LM head.
var hfBenchConfig = Config{Vocab: 16000, SeqLen: 2048, DModel: 768, Heads: 12, KVHeads: 4, DHidden: 2048, Layers: 8,
	Activation: "silu", Gated: true, NoBias: true, RoPETheta: 1e4, NormEps: 1e-5}

// BenchmarkLoadHF measures SaveHF and LoadHF on a generated checkpoint of
// about 300 MB in a temporary directory. "save" times SaveHF ("MB/s" of
// file written). "load/warm" (file in the page cache) and "load/cold"
// (dropped from it first) run LoadHF in a child process per iteration, so
// that the benchmark's own copy of the weights does not count, and report
// its peak resident set against the file, the overhead (peak minus the
// resident set before loading and the weights LoadHF returns: here the
// scratch tensor of the transposes, the largest Linear weight, 49 MB for
// the 16000×768 head) and the throughput in file MB/s.
//
//	go test -run '^$' -bench LoadHF -benchtime 5x ./graph
func BenchmarkLoadHF(b *testing.B) {
	dir := b.TempDir()
	w := hfBenchWeights(b)
	if err := SaveHF(dir, hfBenchConfig, w); err != nil {
		b.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, safetensors.ModelFile))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("save", func(b *testing.B) {
		out := b.TempDir()
		for b.Loop() {
			if err := SaveHF(out, hfBenchConfig, w); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(st.Size())/1e6/(b.Elapsed().Seconds()/float64(b.N)), "MB/s")
	})
	w = nil
	runtime.GC()
	for _, cold := range []bool{false, true} {
		name := map[bool]string{false: "load/warm", true: "load/cold"}[cold]
		b.Run(name, func(b *testing.B) {
			var rs []peakmem.Result
			for b.Loop() {
				r, err := peakmem.Run("TestLoadHFChild", dir, cold)
				if err != nil {
					b.Fatal(err)
				}
				rs = append(rs, r)
			}
			peakmem.Report(b, st.Size(), rs)
		})
	}
}

// hfBenchWeights returns weights of hfBenchConfig with values from a
// cheap deterministic generator (their values do not matter here).
func hfBenchWeights(b *testing.B) Weights {
	hc, err := hfConfig("bench", hfBenchConfig)
	if err != nil {
		b.Fatal(err)
	}
	w := Weights{}
	x := uint32(1)
	for _, t := range hfTensors(hc) {
		if t.optional {
			continue
		}
		shape := t.actqShape()
		data := make([]float32, tensor.Shape(shape).TotalSize())
		for i := range data {
			x ^= x << 13
			x ^= x >> 17
			x ^= x << 5
			data[i] = float32(int32(x)) * 0x1p-37
		}
		w[t.actq] = tensor.New(tensor.WithShape(shape...), tensor.WithBacking(data))
	}
	return w
}

// TestLoadHFChild is BenchmarkLoadHF's child process; it does nothing
// unless the benchmark starts it (through peakmem.Run).
func TestLoadHFChild(t *testing.T) {
	dir, ok, err := peakmem.Child()
	if !ok {
		t.Skip("run by BenchmarkLoadHF")
	}
	if err != nil {
		t.Fatal(err)
	}
	var w Weights
	err = peakmem.Measure(func() (int64, error) {
		var err error
		if _, w, err = LoadHF(dir); err != nil {
			return 0, err
		}
		return 4 * int64(w.Count()), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	runtime.KeepAlive(w)
}
