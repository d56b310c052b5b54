package main

import (
	"bytes"
	"fmt"
	"go/format"
	"os"
	"regexp"
	"strings"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// What the targets share: the builds they are for, element types and lane
// widths, instruction immediates, constant tables and the checks on the
// output.

// defaultBuild are the terms of the build most of the assembly is for: the
// default build on amd64. GOEXPERIMENT=simd builds take simd/archsimd code
// instead, and the purego tag the portable code.
var defaultBuild = []string{"amd64", "!goexperiment.simd", "!purego"}

// notPurego are the terms of assembly that every amd64 build but purego
// uses: code with no simd/archsimd counterpart (internal/cpupeak's loops).
var notPurego = []string{"amd64", "!purego"}

// vecBytes is the size of a vector of the AVX2 code, a YMM register. The
// GEMM micro-kernels and FMA loops give their width themselves (256 or
// 512 bits).
const vecBytes = 32

// elem is an element type of the vector code, float32 or float64, and
// picks the packed instruction for it (…PS or …PD).
type elem struct {
	bits int
}

var (
	f32 = elem{32}
	f64 = elem{64}
)

func (e elem) size() int      { return e.bits / 8 }
func (e elem) lanes() int     { return vecBytes / e.size() } // in a YMM register
func (e elem) goType() string { return fmt.Sprintf("float%d", e.bits) }
func (e elem) shift() uint8   { return uint8(e.bits/32 + 1) } // log₂ of size: an index times size is index << shift

func (e elem) pick(ps, pd func(...Op), ops ...Op) {
	if e.bits == 32 {
		ps(ops...)
	} else {
		pd(ops...)
	}
}

func (e elem) mul(a, b, c Op) { e.pick(VMULPS, VMULPD, a, b, c) }
func (e elem) add(a, b, c Op) { e.pick(VADDPS, VADDPD, a, b, c) }
func (e elem) max(a, b, c Op) { e.pick(VMAXPS, VMAXPD, a, b, c) }
func (e elem) min(a, b, c Op) { e.pick(VMINPS, VMINPD, a, b, c) }
func (e elem) and(a, b, c Op) { e.pick(VANDPS, VANDPD, a, b, c) }
func (e elem) movu(a, b Op)   { e.pick(VMOVUPS, VMOVUPD, a, b) }
func (e elem) bcast(a, b Op)  { e.pick(VBROADCASTSS, VBROADCASTSD, a, b) }

// fma sets c = a·b + c with one rounding (VFMADD231).
func (e elem) fma(a, b, c Op) { e.pick(VFMADD231PS, VFMADD231PD, a, b, c) }

func (e elem) round(mode uint8, a, b Op) {
	if e.bits == 32 {
		VROUNDPS(U8(mode), a, b)
	} else {
		VROUNDPD(U8(mode), a, b)
	}
}

func (e elem) cmp(pred uint8, a, b, c Op) { e.pick(VCMPPS, VCMPPD, U8(pred), a, b, c) }

// param returns the memory operand of a scalar argument.
func param(name string) Mem {
	b, err := Param(name).Resolve()
	if err != nil {
		panic(err)
	}
	return b.Addr
}

// bcastParam broadcasts a scalar float argument to a new vector register.
func (e elem) bcastParam(name string) VecVirtual {
	y := YMM()
	e.bcast(param(name), y)
	return y
}

// at is the memory operand of element i+k·lanes of the slice at base.
func (e elem) at(base, i Register, k int) Mem {
	return Mem{Base: base, Index: i, Scale: uint8(e.size()), Disp: k * vecBytes}
}

// loop emits a loop over n elements (a multiple of the lane count) at
// index register i from 0: unroll vectors per iteration while at least
// that many remain, then one vector at a time. body(k) processes vector k
// of the iteration.
func (e elem) loop(name string, i, n Register, unroll int, body func(k int)) {
	block := e.lanes() * unroll
	end := GP64()
	MOVQ(n, end)
	ANDQ(I32(-block), end)
	XORQ(i, i)
	Label(name + "_block")
	CMPQ(i, end)
	JAE(LabelRef(name + "_one"))
	for k := range unroll {
		body(k)
	}
	ADDQ(I32(block), i)
	JMP(LabelRef(name + "_block"))
	Label(name + "_one")
	CMPQ(i, n)
	JAE(LabelRef(name + "_done"))
	body(0)
	ADDQ(I32(e.lanes()), i)
	JMP(LabelRef(name + "_one"))
	Label(name + "_done")
}

// Comparison predicates of VCMPPS and VCMPPD, by Intel's names; archsimd's
// Equal, Less, LessEqual and GreaterEqual use these.
const (
	cmpEQ = 0  // EQ_OQ
	cmpLT = 1  // LT_OS
	cmpLE = 2  // LE_OS
	cmpGE = 13 // GE_OS

	cmpGEOrdered = 29 // GE_OQ: ≥, false for NaN, without the invalid exception
)

// Rounding modes of VROUNDPS and VROUNDPD.
const (
	roundEven      = 0 // to nearest, ties to even (archsimd's RoundToEven)
	roundFloor     = 1 // towards −Inf
	roundEvenQuiet = 8 // to nearest even, without the precision exception
)

// constTable is a table of vector constants that Go code builds, from the
// package's own constants, and passes to the assembly by pointer: one
// constant a row, in every lane of the row, so that the instructions read
// them as memory operands. The values are written once, in Go.
type constTable struct {
	goVar string     // the Go variable
	doc   []string   // its doc comment
	elem  elem       // the type of a lane
	rows  []constant // in order
	reg   GPVirtual  // the table's address in the function being generated
}

// constant is one row of a constTable: its name in the generator and the
// Go expression of its bits in the package.
type constant struct {
	name, bits, comment string
}

// f32bits is the bits of a float32 constant expression of the package.
func f32bits(expr string) string { return "math.Float32bits(" + expr + ")" }

// goType is the Go type of a pointer to the table, as the assembly
// functions take it.
func (t *constTable) goType() string {
	return fmt.Sprintf("*[%d][%d]uint%d", len(t.rows), t.elem.lanes(), t.elem.bits)
}

// load loads the table's address from the argument k of the function
// being generated.
func (t *constTable) load() {
	t.reg = GP64()
	Load(Param("k"), t.reg)
}

// mem returns the memory operand of constant name (its row).
func (t *constTable) mem(name string) Mem {
	for i, c := range t.rows {
		if c.name == name {
			return Mem{Base: t.reg, Disp: vecBytes * i}
		}
	}
	panic(fmt.Sprintf("no constant %q in %s", name, t.goVar))
}

// writeGo writes the Go file that defines the table, in package pkg, for
// the build of tags. Each row is splatN(bits), with N the lane count: the
// package defines splatN.
func (t *constTable) writeGo(path, pkg string, tags []string) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "// Code generated by internal/asmgen; DO NOT EDIT.\n\n")
	fmt.Fprintf(&b, "//go:build %s\n\npackage %s\n\nimport \"math\"\n\n", strings.Join(tags, " && "), pkg)
	for _, line := range t.doc {
		fmt.Fprintf(&b, "// %s\n", line)
	}
	fmt.Fprintf(&b, "var %s = %s{\n", t.goVar, t.goType()[1:])
	for _, c := range t.rows {
		comment := c.name
		if c.comment != "" {
			comment += ": " + c.comment
		}
		fmt.Fprintf(&b, "\tsplat%d(%s), // %s\n", t.elem.lanes(), c.bits, comment)
	}
	b.WriteString("}\n")
	src, err := format.Source(b.Bytes())
	if err != nil {
		return err
	}
	return os.WriteFile(path, src, 0o644)
}

// checkAssembly checks and tidies the assembly avo wrote to path: no
// X16–X31 or Y16–Y31, which need AVX-512 (in AVX2 code: too many live
// vectors; the AVX-512 kernels work on Z registers only), and a VMOVAPS
// of a register to itself, which a copy gives when the allocator puts both
// in one register, is dropped (avo prunes such moves of general registers
// only).
func checkAssembly(path string) error {
	src, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if r := regexp.MustCompile(`\b[XY](1[6-9]|2[0-9]|3[01])\b`).Find(src); r != nil {
		return fmt.Errorf("%s uses %s, an AVX-512 register: too many live vectors in AVX2 code", path, r)
	}
	self := regexp.MustCompile(`(?m)^\tVMOVAPS +(Y[0-9]+), (Y[0-9]+)\n`)
	src = self.ReplaceAllFunc(src, func(line []byte) []byte {
		if m := self.FindSubmatch(line); string(m[1]) == string(m[2]) {
			return nil
		}
		return line
	})
	return os.WriteFile(path, src, 0o644)
}
