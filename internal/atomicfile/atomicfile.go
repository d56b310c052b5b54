// Package atomicfile writes a file so that it either appears complete or
// not at all: the content goes to a temporary file in the same directory,
// which is synced and then renamed over the destination. A failed write
// leaves no partial file, and an existing file at the destination is
// replaced only by a complete one.
package atomicfile

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
)

// Write creates or replaces the file at path with what fill writes to w,
// with permissions perm. If fill returns an error, or writing, syncing or
// renaming fails, the temporary file is removed, path is left as it was,
// and the error is returned (fill's unwrapped).
func Write(path string, perm os.FileMode, fill func(w *bufio.Writer) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	w := bufio.NewWriterSize(f, 1<<20)
	if err := fill(w); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Chmod(perm); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return os.Rename(tmp, path)
}
