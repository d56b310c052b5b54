package atomicfile_test

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/actq/actq/internal/atomicfile"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f.txt")
	if err := atomicfile.Write(path, 0o640, func(w *bufio.Writer) error {
		_, err := w.WriteString("new")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if b, _ := os.ReadFile(path); string(b) != "new" || err != nil || st.Mode().Perm() != 0o640 {
		t.Fatalf("file %q, mode %v, %v", b, st.Mode(), err)
	}
	// A failing fill leaves the old file and no temporary one.
	boom := errors.New("boom")
	err = atomicfile.Write(path, 0o644, func(w *bufio.Writer) error {
		w.WriteString("partial")
		w.Flush()
		return boom
	})
	if !errors.Is(err, boom) {
		t.Errorf("Write = %v, want fill's error", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "new" {
		t.Errorf("a failed Write changed the file to %q", b)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("files left: %v", entries)
	}
	// A path in the working directory.
	t.Chdir(dir)
	if err := atomicfile.Write("g.txt", 0o644, func(w *bufio.Writer) error { return nil }); err != nil {
		t.Error(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "g.txt")); err != nil {
		t.Error(err)
	}
}
