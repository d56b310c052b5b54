package safetensors_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/actq/actq/internal/hf"
	"github.com/actq/actq/internal/safetensors"
)

// benchConfig is the layout of the generated checkpoint: a Llama of 75M
// parameters (300 MB in F32, 150 MB in BF16), shaped like a small real one.
var benchConfig = hf.Config{
	ModelType: "llama", HiddenSize: 768, IntermediateSize: 2048, NumAttentionHeads: 12, NumKeyValueHeads: 4,
	NumHiddenLayers: 8, HeadDim: 64, RMSNormEps: 1e-5, RopeTheta: 10000, VocabSize: 16000,
	MaxPositionEmbeddings: 2048, HiddenAct: "silu",
}

// loadResult is what the child process reports.
type loadResult struct {
	FileBytes    int64   `json:"file_bytes"`
	Float32Bytes int64   `json:"float32_bytes"` // the destination slices
	BaselineKB   int64   `json:"baseline_kb"`   // VmRSS before loading
	PeakKB       int64   `json:"peak_kb"`       // VmHWM after loading
	Seconds      float64 `json:"seconds"`
}

const (
	childEnv     = "ACTQ_SAFETENSORS_LOAD_CHILD"
	childColdEnv = "ACTQ_SAFETENSORS_LOAD_COLD"
	resultPrefix = "LOAD_RESULT "
)

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
				var rs []loadResult
				for b.Loop() {
					r, err := runLoadChild(path, cold)
					if err != nil {
						b.Fatal(err)
					}
					rs = append(rs, r)
				}
				mb := func(n int64) float64 { return float64(n) / 1e6 }
				med := func(f func(r loadResult) float64) float64 {
					v := make([]float64, len(rs))
					for i, r := range rs {
						v[i] = f(r)
					}
					slices.Sort(v)
					return v[len(v)/2]
				}
				r := rs[0]
				b.ReportMetric(mb(r.FileBytes), "file-MB")
				b.ReportMetric(mb(r.Float32Bytes), "f32-MB")
				// /proc and getrusage count kB of 1024 bytes.
				b.ReportMetric(med(func(r loadResult) float64 { return mb(1024 * r.PeakKB) }), "peak-MB")
				b.ReportMetric(med(func(r loadResult) float64 { return mb(1024*(r.PeakKB-r.BaselineKB) - r.Float32Bytes) }), "overhead-MB")
				b.ReportMetric(med(func(r loadResult) float64 { return float64(1024*r.PeakKB) / float64(r.FileBytes) }), "peak/file")
				b.ReportMetric(med(func(r loadResult) float64 { return mb(r.FileBytes) / r.Seconds }), "MB/s")
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

// runLoadChild runs TestLoadChild in a new process of this test binary.
func runLoadChild(path string, cold bool) (loadResult, error) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestLoadChild$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+path, childColdEnv+"="+strconv.FormatBool(cold))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return loadResult{}, fmt.Errorf("child: %v\n%s", err, out)
	}
	for line := range strings.Lines(string(out)) {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), resultPrefix); ok {
			var r loadResult
			if err := json.Unmarshal([]byte(rest), &r); err != nil {
				return r, err
			}
			// Cross-check VmHWM with getrusage's maxrss of the child, which
			// counts slightly differently (within a megabyte here).
			if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok && (ru.Maxrss < r.PeakKB-2048 || ru.Maxrss > r.PeakKB+2048) {
				return r, fmt.Errorf("child's maxrss %d kB, its VmHWM %d kB", ru.Maxrss, r.PeakKB)
			}
			return r, nil
		}
	}
	return loadResult{}, fmt.Errorf("child printed no result:\n%s", out)
}

// TestLoadChild is BenchmarkLoad's child process; it does nothing unless
// the benchmark starts it.
func TestLoadChild(t *testing.T) {
	path := os.Getenv(childEnv)
	if path == "" {
		t.Skip("run by BenchmarkLoad")
	}
	if os.Getenv(childColdEnv) == "true" {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	baseline := procStatusKB(t, "VmRSS")
	start := time.Now()
	var weights [][]float32
	var n int64
	for _, info := range f.Tensors() {
		dst := make([]float32, info.Len())
		if err := f.ReadFloat32(info.Name, dst); err != nil {
			t.Fatal(err)
		}
		weights = append(weights, dst)
		n += 4 * int64(len(dst))
	}
	elapsed := time.Since(start)
	peak := procStatusKB(t, "VmHWM")
	runtime.KeepAlive(weights)
	out, _ := json.Marshal(loadResult{FileBytes: st.Size(), Float32Bytes: n, BaselineKB: baseline, PeakKB: peak, Seconds: elapsed.Seconds()})
	fmt.Printf("%s%s\n", resultPrefix, out)
}

// procStatusKB returns a field of /proc/self/status, in kB.
func procStatusKB(t *testing.T, field string) int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status:", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			v, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	t.Fatalf("no %s in /proc/self/status", field)
	return 0
}
