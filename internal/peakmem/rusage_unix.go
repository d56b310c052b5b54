//go:build unix

package peakmem

import (
	"os"
	"syscall"
)

// maxRSSKB returns the peak resident set of an exited process that
// getrusage reports (ru_maxrss: kB on Linux), and whether there is one.
func maxRSSKB(ps *os.ProcessState) (int64, bool) {
	ru, ok := ps.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0, false
	}
	return int64(ru.Maxrss), true
}
