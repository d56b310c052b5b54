// Package parallel splits index ranges across goroutines.
package parallel

import (
	"runtime"
	"sync"
)

// For calls body on disjoint sub-ranges [lo, hi) that cover [0, n), using
// up to GOMAXPROCS goroutines. Each range has at least minChunk elements, so
// a small n runs body(0, n) on the calling goroutine with no goroutine and no
// allocation. body must be safe to run concurrently on disjoint ranges.
//
// For returns the first non-nil error returned by body.
func For(n, minChunk int, body func(lo, hi int) error) error {
	if minChunk < 1 {
		minChunk = 1
	}
	workers := runtime.GOMAXPROCS(0)
	if most := n / minChunk; most < workers {
		workers = most
	}
	if workers <= 1 {
		return body(0, n)
	}
	chunk := (n + workers - 1) / workers
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := 1; w < workers; w++ {
		lo, hi := w*chunk, min((w+1)*chunk, n)
		wg.Add(1)
		go func(w, lo, hi int) {
			defer wg.Done()
			errs[w] = body(lo, hi)
		}(w, lo, hi)
	}
	errs[0] = body(0, min(chunk, n))
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
