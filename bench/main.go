// Command bench compares actq's ops with Gorgonia's composites, with a copy
// of the same bytes and with PyTorch, in one run on one machine.
//
//	go run ./bench                       # every op, 1 thread and GOMAXPROCS
//	go run ./bench -quick                # smaller tensors, fewer repetitions
//	go run ./bench -ops gelu,silu -threads 1 -n 4194304
//	GOEXPERIMENT=simd go run ./bench     # with the AVX-512 kernels
//	go run ./bench -ops none -models small-lm   # one whole model only
//	go run ./bench -ops none -models none -generate llama-512   # generation only
//
// For each op, size, pass (forward; forward+backward) and thread count it
// prints ns per element for
//
//	actq       the op's own code as the tape machine runs it when it can
//	           reuse buffers (UsePreallocDo into preallocated tensors; Do,
//	           which allocates, for ops without UsePreallocDo)
//	actq tape  a tape machine running y = f(x) (and, for forward+backward,
//	           cost = Σy and its gradient), Reset before each run
//	gorgonia   the same machine program with Gorgonia's composite or
//	           built-in op, where one exists
//	copy       copying the same number of bytes (forward: one read and one
//	           write per element; forward+backward: 2.5 times that)
//	torch      PyTorch, timed by bench/torch_bench.py --serve when
//	           /usr/bin/python3 imports torch (the forward call, and the
//	           forward call followed by the backward kernel autograd would
//	           run), with the same thread count
//
// and the ratios actq/copy, actq/torch and tape/gorgonia. Then, for whole
// models (-models), it times graph.Trainer.Step and graph.Evaluator.Eval
// against the same model in PyTorch (bench/torch_model.py). Each figure is the
// median of -count samples; the samples of all variants, PyTorch's too, are
// interleaved, so that load from other processes hits them alike.
//
// The gemm op (see gemm.go) times float32 matrix products instead: actq's
// Sgemm (package blas), gonum's and PyTorch's matmul, in GFLOPS and as a
// fraction of the core's measured FMA peak.
//
// Last, for Llama-shaped models (-generate; see generate.go), it times
// greedy generation with graph.Generator against PyTorch's eager decode
// loop with a KV cache (bench/torch_llama.py) on the same weights, and
// reading the weights once, the memory-bandwidth bar of decoding.
package main

import (
	"bufio"
	"cmp"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	actqblas "github.com/actq/actq/blas"
	"github.com/actq/actq/internal/parallel"
	"github.com/actq/actq/ops"
	"github.com/actq/actq/ops/kernel"
	"github.com/actq/actq/quantize"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// nodeFn builds an op's node from its input.
type nodeFn = func(*gorgonia.Node) (*gorgonia.Node, error)

// benchOp is one row of the comparison. To add an op, add an entry to
// benchOps: its actq constructor, Gorgonia's equivalent (nil if none), the
// name torch_bench.py knows it by, and its default shape.
type benchOp struct {
	name     string
	actq     nodeFn
	gorgonia nodeFn
	torch    string
	shape    func(n int) []int
}

func vector(n int) []int { return []int{n} }

var benchOps = []benchOp{
	{"relu", ops.ReLU, gorgonia.Rectify, "relu", vector},
	{"gelu", ops.GELU, nil, "gelu", vector}, // Gorgonia has no erf
	{"gelu_tanh", ops.GELUTanh, geluTanhComposite, "gelu_tanh", vector},
	{"silu", ops.SiLU, siluComposite, "silu", vector},
	// int8 per-tensor fake quant, scale 0.05, zero point 0 (as
	// torch.fake_quantize_per_tensor_affine(x, 0.05, 0, -128, 127));
	// Gorgonia has no equivalent.
	{"fake_quant_int8", fakeQuantInt8, nil, "fake_quant_int8", vector},
	// Softmax along the last axis of rows of 1024 (512×1024 by default).
	{"softmax", softmaxLast, gorgoniaSoftmaxLast, "softmax", rows1024},
}

// softmaxLast and gorgoniaSoftmaxLast are the softmaxes along the last
// axis, as nodeFns.
func softmaxLast(x *gorgonia.Node) (*gorgonia.Node, error)         { return ops.Softmax(x) }
func gorgoniaSoftmaxLast(x *gorgonia.Node) (*gorgonia.Node, error) { return gorgonia.SoftMax(x) }

// rows1024 is the shape of n elements as rows of 1024.
func rows1024(n int) []int { return []int{max(n/1024, 1), 1024} }

func fakeQuantInt8(x *gorgonia.Node) (*gorgonia.Node, error) {
	return quantize.FakeQuant(x, quantize.Spec{Format: quantize.Int8, Scale: []float64{0.05}, ZeroPoint: []int{0}})
}

// geluTanhComposite is 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) from
// Gorgonia primitives.
func geluTanhComposite(x *gorgonia.Node) (*gorgonia.Node, error) {
	c := func(v float64) *gorgonia.Node { return gorgonia.NewConstant(float32(v)) }
	x3, err := gorgonia.Cube(x)
	if err != nil {
		return nil, err
	}
	k := gorgonia.Must(gorgonia.Mul(x3, c(0.044715)))
	inner := gorgonia.Must(gorgonia.Mul(gorgonia.Must(gorgonia.Add(x, k)), c(math.Sqrt(2/math.Pi))))
	t := gorgonia.Must(gorgonia.Tanh(inner))
	onePlus := gorgonia.Must(gorgonia.Add(t, c(1)))
	return gorgonia.Mul(gorgonia.Must(gorgonia.HadamardProd(x, onePlus)), c(0.5))
}

// siluComposite is x ⊙ sigmoid(x).
func siluComposite(x *gorgonia.Node) (*gorgonia.Node, error) {
	s, err := gorgonia.Sigmoid(x)
	if err != nil {
		return nil, err
	}
	return gorgonia.HadamardProd(x, s)
}

type config struct {
	n       int
	ops     []string
	threads []int
	count   int
	sample  time.Duration
	python  string
	noTorch bool
	tape    bool
	gemm    string
}

func main() {
	var c config
	var opsFlag, threadsFlag string
	quick := flag.Bool("quick", false, "quick run: 2^18 elements, 3 samples of 10ms, the study's model only (overrides -n, -count, -sample; -models if not set)")
	flag.IntVar(&c.n, "n", 1<<20, "elements per tensor (softmax: rows of 1024)")
	flag.StringVar(&opsFlag, "ops", "", "comma-separated ops, gemm included (default: all; none: no op)")
	flag.StringVar(&c.gemm, "gemm", "", "comma-separated m×k×n shapes of the gemm op, t for B transposed, e.g. 128x32x128t (default: "+defaultGEMM+"; -quick: "+quickGEMM+")")
	modelsFlag := flag.String("models", "all", "comma-separated whole models (study, small-lm, long-seq; all; none)")
	genFlag := flag.String("generate", "llama-512", "comma-separated generation models (llama-512, llama-tiny; all; none); -quick: llama-tiny")
	flag.StringVar(&threadsFlag, "threads", "", "comma-separated thread counts (default: 1 and GOMAXPROCS)")
	flag.IntVar(&c.count, "count", 5, "samples per figure (the median is printed)")
	flag.DurationVar(&c.sample, "sample", 50*time.Millisecond, "minimum duration of one sample")
	flag.StringVar(&c.python, "python", "/usr/bin/python3", "Python with torch, for the PyTorch column")
	flag.BoolVar(&c.noTorch, "notorch", false, "skip PyTorch")
	flag.BoolVar(&c.tape, "tape", true, "also time whole tape-machine programs (actq tape, gorgonia)")
	flag.Parse()
	if flag.NArg() > 0 {
		usagef("unexpected arguments: %v", flag.Args())
	}
	if c.n < 1 || c.count < 1 || c.sample <= 0 {
		usagef("-n %d, -count %d and -sample %v must be positive", c.n, c.count, c.sample)
	}
	if *quick {
		c.n, c.count, c.sample = 1<<18, 3, 10*time.Millisecond
		if !flagSet("models") {
			*modelsFlag = "study"
		}
		if !flagSet("generate") {
			*genFlag = "llama-tiny"
		}
	}
	if c.gemm == "" {
		c.gemm = defaultGEMM
		if *quick {
			c.gemm = quickGEMM
		}
	}
	if _, err := parseGEMM(c.gemm); err != nil {
		usagef("-gemm: %v", err)
	}
	opNames, modelNames, genNames := []string{"gemm", "none"}, []string{"all", "none"}, []string{"all", "none"}
	for _, o := range benchOps {
		opNames = append(opNames, o.name)
	}
	for _, m := range benchModels {
		modelNames = append(modelNames, m.name)
	}
	for _, gm := range genModels {
		genNames = append(genNames, gm.name)
	}
	checkNames("ops", opsFlag, opNames)
	checkNames("models", *modelsFlag, modelNames)
	checkNames("generate", *genFlag, genNames)
	for _, o := range benchOps {
		if opsFlag == "" || slices.Contains(strings.Split(opsFlag, ","), o.name) {
			c.ops = append(c.ops, o.name)
		}
	}
	if opsFlag == "" || slices.Contains(strings.Split(opsFlag, ","), "gemm") {
		c.ops = append(c.ops, "gemm")
	}
	maxProcs := runtime.GOMAXPROCS(0)
	if threadsFlag == "" {
		c.threads = []int{1}
		if maxProcs > 1 {
			c.threads = append(c.threads, maxProcs)
		}
	} else {
		for _, s := range strings.Split(threadsFlag, ",") {
			t, err := strconv.Atoi(s)
			if err != nil || t < 1 {
				usagef("bad -threads %q", threadsFlag)
			}
			c.threads = append(c.threads, t)
		}
	}
	models := strings.Split(*modelsFlag, ",")
	describeMachine()
	torch := startTorch(c)
	for _, name := range c.ops {
		if name == "gemm" {
			benchGEMM(c, torch)
		}
		for _, o := range benchOps {
			if o.name == name {
				benchOne(c, o, torch)
			}
		}
	}
	runtime.GOMAXPROCS(maxProcs)
	if *modelsFlag != "none" {
		benchModelRows(c, models, torch)
	}
	if *genFlag != "none" {
		benchGenerateRows(c, strings.Split(*genFlag, ","), torch)
	}
	if torch != nil {
		torch.close()
	}
}

// flagSet reports whether the flag called name was given on the command line.
func flagSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// checkNames exits through usagef unless every comma-separated name in
// list is one of known; the empty list passes.
func checkNames(flagName, list string, known []string) {
	if list == "" {
		return
	}
	for _, name := range strings.Split(list, ",") {
		if !slices.Contains(known, name) {
			usagef("-%s: unknown name %q (want %s)", flagName, name, strings.Join(known, ", "))
		}
	}
}

// usagef reports a bad command line and the flags, and exits with status 2.
func usagef(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
	flag.Usage()
	os.Exit(2)
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
	os.Exit(1)
}

// describeMachine prints what the figures depend on.
func describeMachine() {
	cpu := "unknown"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	exp := "none"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "GOEXPERIMENT" {
				exp = s.Value
			}
		}
	}
	fmt.Printf("CPU:           %s (%d logical CPUs)\n", cpu, runtime.NumCPU())
	fmt.Printf("Go:            %s %s/%s, GOMAXPROCS %d, GOEXPERIMENT=%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.GOMAXPROCS(0), exp)
	fmt.Printf("actq float32:  vector kernels: %s\n", cmp.Or(kernel.VectorISA(), "none (portable Go)"))
	fmt.Printf("actq blas:     %s\n", actqblas.Kernels())
}

// torchServer is bench/torch_bench.py --serve: it times one PyTorch op per
// request, so that PyTorch samples interleave with the Go ones.
type torchServer struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

// startTorch starts the PyTorch timing server, or returns nil (after
// saying why) when PyTorch is missing.
func startTorch(c config) *torchServer {
	if c.noTorch {
		fmt.Println("PyTorch:       skipped (-notorch)")
		return nil
	}
	script := "bench/torch_bench.py"
	if _, err := os.Stat(script); err != nil {
		fmt.Printf("PyTorch:       not run: %s not found (run from the module root)\n", script)
		return nil
	}
	if err := exec.Command(c.python, "-c", "import torch").Run(); err != nil {
		fmt.Printf("PyTorch:       not found (%s cannot import torch)\n", c.python)
		return nil
	}
	cmd := exec.Command(c.python, script, "--serve")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		fatalf("%v", err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		fatalf("%v", err)
	}
	if err := cmd.Start(); err != nil {
		fmt.Printf("PyTorch:       failed to start: %v\n", err)
		return nil
	}
	t := &torchServer{cmd: cmd, in: in, out: bufio.NewScanner(out)}
	var hello struct {
		Torch string `json:"torch"`
	}
	if !t.out.Scan() || json.Unmarshal(t.out.Bytes(), &hello) != nil {
		fmt.Println("PyTorch:       the timing script did not start")
		return nil
	}
	fmt.Printf("PyTorch:       %s (bench/torch_bench.py, samples interleaved with the Go ones)\n", hello.Torch)
	return t
}

// time returns PyTorch's ns per call of op's pass.
func (t *torchServer) time(op string, shape []int, threads int, pass string, d time.Duration) (float64, error) {
	return t.timeRequest(map[string]any{"op": op, "shape": shape, "threads": threads, "pass": pass}, d)
}

// timeRequest returns PyTorch's ns per call of the request req (op,
// shape, threads and the op's own fields), timed for at least d.
func (t *torchServer) timeRequest(req map[string]any, d time.Duration) (float64, error) {
	req["min_seconds"] = d.Seconds()
	var r struct {
		NS float64 `json:"ns"`
	}
	err := t.call(req, &r)
	return r.NS, err
}

// call sends one request to torch_bench.py and decodes its answer into
// resp; an answer with "error" is returned as an error.
func (t *torchServer) call(req map[string]any, resp any) error {
	line, err := json.Marshal(req)
	if err != nil {
		return err
	}
	if _, err := t.in.Write(append(line, '\n')); err != nil {
		return err
	}
	if !t.out.Scan() {
		return fmt.Errorf("torch_bench.py exited")
	}
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(t.out.Bytes(), &e); err != nil {
		return err
	}
	if e.Error != "" {
		return fmt.Errorf("torch_bench.py: %s", e.Error)
	}
	return json.Unmarshal(t.out.Bytes(), resp)
}

// variant is PyTorch's op as a timed variant; a failed call is reported
// and gives NaN.
func (t *torchServer) variant(op string, shape []int, threads int, pass string) variant {
	return variant{name: "torch", timed: func(d time.Duration) float64 {
		ns, err := t.time(op, shape, threads, pass, d)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: PyTorch %s: %v\n", op, err)
			return math.NaN()
		}
		return ns
	}}
}

func (t *torchServer) close() {
	t.in.Close()
	t.cmd.Wait()
}

func dims(shape []int) string {
	s := make([]string, len(shape))
	for i, d := range shape {
		s[i] = strconv.Itoa(d)
	}
	return strings.Join(s, "x")
}

// variant is one timed implementation of a pass: run is timed here, or
// timed reports its own ns per run (PyTorch).
type variant struct {
	name  string
	run   func() error
	timed func(d time.Duration) float64
}

func benchOne(c config, o benchOp, torch *torchServer) {
	shape := o.shape(c.n)
	n := 1
	for _, d := range shape {
		n *= d
	}
	fmt.Printf("\n## %s, float32 %s (%d elements)\n\n", o.name, dims(shape), n)
	fmt.Println("| pass | threads | actq | actq tape | gorgonia | copy | torch | actq/copy | actq/torch | tape/gorgonia |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|")
	x, dy := inputs(shape)
	for _, pass := range []string{"fwd", "fwdbwd"} {
		for _, threads := range c.threads {
			runtime.GOMAXPROCS(threads)
			vs, err := variants(c, o, pass, x, dy)
			if err != nil {
				fatalf("%s %s: %v", o.name, pass, err)
			}
			if torch != nil && o.torch != "" {
				vs = append(vs, torch.variant(o.torch, shape, threads, pass))
			}
			med := measure(c, vs, median)
			ns := func(name string) float64 { return byName(vs, med, name) / float64(n) }
			tns := ns("torch")
			label := map[string]string{"fwd": "forward", "fwdbwd": "fwd+bwd"}[pass]
			fmt.Printf("| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s |\n", label, threads,
				num(ns("actq")), num(ns("actq tape")), num(ns("gorgonia")), num(ns("copy")), num(tns),
				ratio(ns("actq"), ns("copy")), ratio(ns("actq"), tns), ratio(ns("actq tape"), ns("gorgonia")))
		}
	}
}

func num(v float64) string {
	if math.IsNaN(v) {
		return "—"
	}
	return strconv.FormatFloat(v, 'f', 3, 64)
}

func ratio(a, b float64) string {
	if math.IsNaN(a) || math.IsNaN(b) {
		return "—"
	}
	return strconv.FormatFloat(a/b, 'f', 2, 64) + "×"
}

// byName returns the figure in figs (one per variant) of the variant of vs
// called name, or NaN if there is none.
func byName(vs []variant, figs []float64, name string) float64 {
	for i, v := range vs {
		if v.name == name {
			return figs[i]
		}
	}
	return math.NaN()
}

// measure returns, for each variant, pick of c.count samples of its time
// per run in ns (NaN samples, failed PyTorch calls, left out), the samples
// of all variants taken in turn.
func measure(c config, vs []variant, pick func([]float64) float64) []float64 {
	samples := make([][]float64, len(vs))
	for range c.count {
		for i, v := range vs {
			var ns float64
			if v.timed != nil {
				ns = v.timed(c.sample)
			} else {
				ns = perRun(v.run, c.sample)
			}
			if !math.IsNaN(ns) {
				samples[i] = append(samples[i], ns)
			}
		}
	}
	r := make([]float64, len(vs))
	for i, s := range samples {
		r[i] = math.NaN()
		if len(s) > 0 {
			r[i] = pick(s)
		}
	}
	return r
}

// median is the median of s (the upper one of an even count); it sorts s.
func median(s []float64) float64 {
	slices.Sort(s)
	return s[len(s)/2]
}

// best is the smallest of s.
func best(s []float64) float64 { return slices.Min(s) }

// perRun returns the mean ns per call of run over at least d.
func perRun(run func() error, d time.Duration) float64 {
	if err := run(); err != nil {
		fatalf("%v", err)
	}
	for n := 1; ; {
		start := time.Now()
		for range n {
			if err := run(); err != nil {
				fatalf("%v", err)
			}
		}
		el := time.Since(start)
		if el >= d {
			return float64(el.Nanoseconds()) / float64(n)
		}
		n = max(2*n, int(float64(n)*float64(d)/float64(max(el, time.Microsecond))*1.2))
	}
}

// inputs returns x[i] = 6·sin(0.618·i) and dy[i] = cos(i), as in
// torch_bench.py and the Go benchmarks.
func inputs(shape []int) (x, dy *tensor.Dense) {
	n := 1
	for _, d := range shape {
		n *= d
	}
	xs, dys := make([]float32, n), make([]float32, n)
	for i := range xs {
		xs[i] = float32(6 * math.Sin(float64(i)*0.618))
		dys[i] = float32(math.Cos(float64(i)))
	}
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(xs)),
		tensor.New(tensor.WithShape(shape...), tensor.WithBacking(dys))
}

// variants returns the Go implementations of one pass of o.
func variants(c config, o benchOp, pass string, x, dy *tensor.Dense) ([]variant, error) {
	var vs []variant
	// actq: the op's UsePreallocDo, as the tape machine calls it when it
	// reuses registers (Do, allocating, for ops without it).
	g := gorgonia.NewGraph()
	xn := gorgonia.NodeFromAny(g, x, gorgonia.WithName("x"))
	yn, err := o.actq(xn)
	if err != nil {
		return nil, err
	}
	y := x.Clone().(*tensor.Dense)
	fwd := opRunner(yn.Op(), y, x)
	run := fwd
	if pass == "fwdbwd" {
		dyn := gorgonia.NodeFromAny(g, dy, gorgonia.WithName("dy"))
		sd, ok := yn.Op().(gorgonia.SDOp)
		if !ok {
			return nil, fmt.Errorf("%v has no SymDiff", yn.Op())
		}
		grads, err := sd.SymDiff(gorgonia.Nodes{xn}, yn, dyn)
		if err != nil {
			return nil, err
		}
		// The gradient node's inputs, by node: x, y or dy.
		byNode := map[*gorgonia.Node]gorgonia.Value{xn: x, yn: y, dyn: dy}
		var in []gorgonia.Value
		for it := g.From(grads[0].ID()); it.Next(); { // children, in order
			c := it.Node().(*gorgonia.Node)
			v, ok := byNode[c]
			if !ok {
				return nil, fmt.Errorf("gradient of %v reads %v, not x, y or dy", yn.Op(), c)
			}
			in = append(in, v)
		}
		bwd := opRunner(grads[0].Op(), x.Clone().(*tensor.Dense), in...)
		run = func() error {
			if err := fwd(); err != nil {
				return err
			}
			return bwd()
		}
	}
	vs = append(vs, variant{name: "actq", run: run})

	// copy: one copy per forward; 2.5 per forward+backward (x→y, then
	// x and dy read and dx written).
	xs := x.Data().([]float32)
	copies := 1.0
	if pass == "fwdbwd" {
		copies = 2.5
	}
	big := make([]float32, int(float64(len(xs))*copies))
	bigDst := make([]float32, len(big))
	vs = append(vs, variant{name: "copy", run: func() error {
		return parallel.For(len(big), 1<<16, func(lo, hi int) error {
			copy(bigDst[lo:hi], big[lo:hi])
			return nil
		})
	}})

	if c.tape {
		for _, t := range []struct {
			name string
			f    nodeFn
		}{{"actq tape", o.actq}, {"gorgonia", o.gorgonia}} {
			if t.f == nil {
				continue
			}
			m, err := tapeProgram(t.f, x, pass == "fwdbwd")
			if err != nil {
				return nil, fmt.Errorf("%s: %w", t.name, err)
			}
			vs = append(vs, variant{name: t.name, run: func() error { m.Reset(); return m.RunAll() }})
		}
	}
	return vs, nil
}

// opRunner returns a call of op on inputs: UsePreallocDo into out when the
// op has it, Do otherwise.
func opRunner(op gorgonia.Op, out gorgonia.Value, inputs ...gorgonia.Value) func() error {
	if p, ok := op.(gorgonia.UsePreallocDoer); ok {
		return func() error { _, err := p.UsePreallocDo(out, inputs...); return err }
	}
	return func() error { _, err := op.Do(inputs...); return err }
}

// tapeProgram compiles y = f(x) (with grad: cost = Σy and ∂cost/∂x) for a
// tape machine. The machine is never closed: the process ends first.
func tapeProgram(f nodeFn, x *tensor.Dense, grad bool) (gorgonia.VM, error) {
	g := gorgonia.NewGraph()
	xn := gorgonia.NodeFromAny(g, x, gorgonia.WithName("x"))
	y, err := f(xn)
	if err != nil {
		return nil, err
	}
	if grad {
		cost, err := gorgonia.Sum(y)
		if err != nil {
			return nil, err
		}
		if _, err := gorgonia.Grad(cost, xn); err != nil {
			return nil, err
		}
	}
	return gorgonia.NewTapeMachine(g), nil
}
