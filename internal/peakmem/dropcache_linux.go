package peakmem

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// DropCache asks the kernel to drop the file at path from the page cache
// (posix_fadvise POSIX_FADV_DONTNEED), so that the next read of it comes
// from the disk: a "cold" load.
func DropCache(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("peakmem: %w", err)
	}
	defer f.Close()
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		return fmt.Errorf("peakmem: dropping %s from the page cache: %w", path, err)
	}
	return nil
}
