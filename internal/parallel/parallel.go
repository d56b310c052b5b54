// Package parallel splits index ranges across goroutines.
package parallel

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// Workers returns the number of goroutines For and ForWorkers use for n
// elements in chunks of at least minChunk: at most GOMAXPROCS, at least 1.
func Workers(n, minChunk int) int {
	if minChunk < 1 {
		minChunk = 1
	}
	return max(1, min(runtime.GOMAXPROCS(0), n/minChunk))
}

// For calls body on disjoint sub-ranges [lo, hi) that cover [0, n), using
// up to GOMAXPROCS goroutines. Each range has at least minChunk elements, so
// a small n runs body(0, n) on the calling goroutine with no goroutine and no
// allocation. body must be safe to run concurrently on disjoint ranges.
//
// For returns the first non-nil error returned by body.
func For(n, minChunk int, body func(lo, hi int) error) error {
	if Workers(n, minChunk) <= 1 {
		return body(0, n)
	}
	return ForWorkers(n, minChunk, func(_, lo, hi int) error { return body(lo, hi) })
}

// ForWorkers is For with the index of the goroutine, 0 ≤ worker <
// Workers(n, minChunk), passed to body, so that each can use scratch space
// of its own. Worker 0 runs on the calling goroutine.
func ForWorkers(n, minChunk int, body func(worker, lo, hi int) error) error {
	workers := Workers(n, minChunk)
	if workers <= 1 {
		return body(0, 0, n)
	}
	chunk := (n + workers - 1) / workers
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := 1; w < workers; w++ {
		lo, hi := w*chunk, min((w+1)*chunk, n)
		wg.Add(1)
		go func(w, lo, hi int) {
			defer wg.Done()
			errs[w] = body(w, lo, hi)
		}(w, lo, hi)
	}
	errs[0] = body(0, 0, min(chunk, n))
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// Dynamic calls body on the chunks [lo, min(lo+chunk, n)) that cover
// [0, n), which the calling goroutine and up to GOMAXPROCS−1 others started
// for the call take in order from a shared counter. It returns when every
// chunk is done, without waiting for a goroutine that took none: a
// goroutine the OS runs late (the cores busy with other work) finds the
// chunks taken and calls nothing, so it costs the caller nothing but the
// share of the work it did not do, where For would wait for it. body must
// be safe to run concurrently on disjoint ranges; a small n (one chunk)
// runs body(0, n) on the caller with no goroutine and no allocation.
func Dynamic(n, chunk int, body func(lo, hi int)) {
	chunk = max(chunk, 1)
	chunks := (n + chunk - 1) / chunk
	workers := min(runtime.GOMAXPROCS(0), chunks)
	if workers <= 1 {
		body(0, n)
		return
	}
	var next, done atomic.Int64
	finished := make(chan struct{})
	work := func() {
		for {
			i := int(next.Add(1) - 1)
			if i >= chunks {
				return
			}
			body(i*chunk, min((i+1)*chunk, n))
			if int(done.Add(1)) == chunks {
				close(finished)
			}
		}
	}
	for range workers - 1 {
		go work()
	}
	work()
	<-finished
}
