package qkernel

// The AVX2 assembly of the default build (vec_avx2_amd64.s and its
// declarations, vec_avx2_stubs_amd64.go) is written by the repository's avo
// program, internal/asmgen, a module of its own; see vec_asm_amd64.go.
//go:generate go run -C ../asmgen . internal/qkernel
