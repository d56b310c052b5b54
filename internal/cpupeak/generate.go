package cpupeak

// The FMA loops (peak_amd64.s and their declarations, peak_stub_amd64.go)
// are written by the repository's avo program, internal/asmgen, a module
// of its own.
//go:generate go run -C ../asmgen . internal/cpupeak
