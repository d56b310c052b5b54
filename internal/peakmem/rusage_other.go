//go:build !unix

package peakmem

import "os"

// maxRSSKB reports that there is no getrusage peak to compare with.
func maxRSSKB(*os.ProcessState) (int64, bool) { return 0, false }
