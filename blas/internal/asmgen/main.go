// Command asmgen writes the assembly of package blas (its GEMM
// micro-kernels) and of internal/cpupeak (FMA throughput loops) with avo
// (github.com/mmcloughlin/avo). It is a module of its own so that actq does
// not depend on avo; blas/generate.go runs it with go generate:
//
//	go run -C internal/asmgen . -gemm ../../gemm_amd64.s -gemmstubs ../../gemm_stub_amd64.go \
//		-peak ../../../internal/cpupeak/peak_amd64.s -peakstubs ../../../internal/cpupeak/peak_stub_amd64.go
//
// The generation logic is in gemm.go.
package main

import (
	"flag"
	"log"
)

func main() {
	gemm := flag.String("gemm", "", "write blas's micro-kernels to `file`")
	gemmStubs := flag.String("gemmstubs", "", "write their Go declarations to `file`")
	peak := flag.String("peak", "", "write internal/cpupeak's FMA loops to `file`")
	peakStubs := flag.String("peakstubs", "", "write their Go declarations to `file`")
	flag.Parse()
	if (*gemm == "") != (*gemmStubs == "") || (*peak == "") != (*peakStubs == "") {
		log.Fatal("give each assembly file with its stubs file")
	}
	if *gemm != "" {
		if err := GenerateGEMM(*gemm, *gemmStubs); err != nil {
			log.Fatal(err)
		}
	}
	if *peak != "" {
		if err := GeneratePeak(*peak, *peakStubs); err != nil {
			log.Fatal(err)
		}
	}
}
