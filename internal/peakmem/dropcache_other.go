//go:build !linux

package peakmem

import (
	"errors"
	"fmt"
)

// DropCache asks the kernel to drop the file at path from the page cache;
// off Linux it returns an error wrapping errors.ErrUnsupported.
func DropCache(path string) error {
	return fmt.Errorf("peakmem: dropping %s from the page cache: %w", path, errors.ErrUnsupported)
}
