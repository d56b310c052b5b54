package blas

import (
	"sync"
	"sync/atomic"
	"unsafe"
)

// workspace is the scratch memory of one GEMM call: the packed panels and
// temporaries (buf), and the state the threads of a blocked product share.
// Workspaces are reused through a sync.Pool, so that a call in steady
// state allocates nothing, and each call has its own.
type workspace[T float] struct {
	buf     []T
	blocked blockedShared[T]
}

var (
	pool32 = sync.Pool{New: func() any { return new(workspace[float32]) }}
	pool64 = sync.Pool{New: func() any { return new(workspace[float64]) }}
)

func poolOf[T float]() *sync.Pool {
	var z T
	if unsafe.Sizeof(z) == 4 {
		return &pool32
	}
	return &pool64
}

// getWorkspace returns a workspace whose buf holds at least n elements
// plus room to align its start.
func getWorkspace[T float](n int) *workspace[T] {
	ws := poolOf[T]().Get().(*workspace[T])
	if n += align; cap(ws.buf) < n {
		ws.buf = make([]T, n)
	}
	ws.buf = ws.buf[:cap(ws.buf)]
	return ws
}

// putWorkspace returns ws to its pool, dropping its references to the
// caller's matrices.
func putWorkspace[T float](ws *workspace[T]) {
	ws.blocked = blockedShared[T]{}
	poolOf[T]().Put(ws)
}

// alignOffset is the number of leading elements of b to skip for its
// start to be aligned to 64 bytes (at most align−1).
func alignOffset[T float](b []T) int {
	if len(b) == 0 {
		return 0
	}
	var z T
	size := int(unsafe.Sizeof(z))
	addr := int(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
	return (64 - addr%64) % 64 / size
}

// barrier makes the threads of a blocked product wait for each other: the
// n callers of wait return together, after the last to arrive has run its
// argument (if not nil). A waiter spins briefly (the threads run on their
// own cores and usually arrive within microseconds of each other), then
// sleeps.
type barrier struct {
	n       int
	arrived atomic.Int32
	gen     atomic.Uint32
	mu      sync.Mutex
	cond    sync.Cond
}

// init prepares b for n threads.
func (b *barrier) init(n int) {
	b.n = n
	b.arrived.Store(0)
	b.cond.L = &b.mu
}

// spinWait is how many times a waiter checks before it sleeps.
const spinWait = 1 << 12

func (b *barrier) wait(last func()) {
	gen := b.gen.Load()
	if int(b.arrived.Add(1)) == b.n {
		if last != nil {
			last()
		}
		b.arrived.Store(0)
		b.mu.Lock()
		b.gen.Add(1)
		b.cond.Broadcast()
		b.mu.Unlock()
		return
	}
	for range spinWait {
		if b.gen.Load() != gen {
			return
		}
	}
	b.mu.Lock()
	for b.gen.Load() == gen {
		b.cond.Wait()
	}
	b.mu.Unlock()
}

// countdown is a count of pending tasks that threads can wait on: wait
// returns once done has been called as many times as set said.
type countdown struct {
	left atomic.Int64
	mu   sync.Mutex
	cond sync.Cond
}

// set starts a count of n; no thread may be waiting.
func (c *countdown) set(n int) {
	c.left.Store(int64(n))
	c.cond.L = &c.mu
}

// done counts one task done.
func (c *countdown) done() {
	if c.left.Add(-1) == 0 {
		c.mu.Lock()
		c.cond.Broadcast()
		c.mu.Unlock()
	}
}

// wait returns when every task is done: at once if they are, after a
// short spin if they are about to be, else it sleeps.
func (c *countdown) wait() {
	for range spinWait {
		if c.left.Load() == 0 {
			return
		}
	}
	c.mu.Lock()
	for c.left.Load() != 0 {
		c.cond.Wait()
	}
	c.mu.Unlock()
}
