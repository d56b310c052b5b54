// Command asmgen writes actq's assembly with avo
// (github.com/mmcloughlin/avo): the activation kernels of ops/kernel, the
// fake-quant kernels of internal/qkernel, blas's GEMM micro-kernels and
// internal/cpupeak's FMA loops. It is a module of its own so that actq
// does not depend on avo. Its argument names the package to write, by its
// directory in the repository; go generate runs it there, from its own
// directory:
//
//	//go:generate go run -C ../../internal/asmgen . ops/kernel
//
// A target is a function that emits the package's assembly functions into
// avo's context, the names of the files it goes to, the build they are
// for, and, for a target whose assembly reads its constants from a table
// built in Go, that table. The targets live one file to a package or two
// (activation.go, fakequant.go with fp16.go, gemm.go); the helpers they
// share (builds, element types and lane widths, comparison predicates,
// constant tables, the checks on the output) are in vec.go. Adding a target is a file with
// its function and a line in targets.
package main

import (
	"flag"
	"log"
	"path"
	"path/filepath"
	"strings"

	. "github.com/mmcloughlin/avo/build"
)

// target is the assembly of one package.
type target struct {
	pkg        string      // the package's directory, from the repository's root
	asm, stubs string      // the files written there: the assembly and its Go declarations
	tags       []string    // the build they are for
	consts     string      // the Go file that builds table, if the target has one
	table      *constTable // the constants the assembly reads, or nil
	gen        func()      // emits the functions
}

// targets are the packages asmgen writes.
var targets = []target{
	{"ops/kernel", "activation_amd64.s", "activation_stub_amd64.go", defaultBuild, "activation_consts_amd64.go", &activationConsts, activations},
	{"internal/qkernel", "vec_avx2_amd64.s", "vec_avx2_stubs_amd64.go", defaultBuild, "", nil, fakeQuant},
	{"blas", "gemm_amd64.s", "gemm_stub_amd64.go", defaultBuild, "", nil, gemm},
	{"internal/cpupeak", "peak_amd64.s", "peak_stub_amd64.go", notPurego, "", nil, fmaLoops},
}

// root is the repository's root, seen from this module's directory, where
// go generate runs the command (go run -C).
const root = "../.."

func main() {
	log.SetFlags(0)
	log.SetPrefix("asmgen: ")
	flag.Parse()
	var t target
	for _, c := range targets {
		if flag.NArg() == 1 && c.pkg == flag.Arg(0) {
			t = c
		}
	}
	if t.gen == nil {
		log.Fatalf("usage: asmgen package, with package one of %v", targets)
	}
	dir := filepath.Join(root, filepath.FromSlash(t.pkg))
	asm := filepath.Join(dir, t.asm)
	// avo's own flags name the output files and the package.
	for name, value := range map[string]string{"out": asm, "stubs": filepath.Join(dir, t.stubs), "pkg": path.Base(t.pkg)} {
		if err := flag.Set(name, value); err != nil {
			log.Fatal(err)
		}
	}

	ConstraintExpr(strings.Join(t.tags, ",")) // avo's syntax
	t.gen()
	Generate()
	if err := checkAssembly(asm); err != nil {
		log.Fatal(err)
	}
	if t.table != nil {
		if err := t.table.writeGo(filepath.Join(dir, t.consts), path.Base(t.pkg), t.tags); err != nil {
			log.Fatal(err)
		}
	}
}

func (t target) String() string { return t.pkg }
