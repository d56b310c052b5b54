//go:build race

package ops

// raceEnabled reports a -race build: Gorgonia's LispMachine races with
// itself when an op returns an error (vm_genera.go: RunAll's deferred
// m.q = nil against the runall goroutine reading m.q), so tests of that
// error path run only without -race.
const raceEnabled = true
