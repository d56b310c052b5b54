//go:build !amd64 || purego

package cpupeak

// fmaLoop returns nil: this build has no FMA loop.
func fmaLoop(bits int, double bool) (func(n int), float64) { return nil, 0 }
