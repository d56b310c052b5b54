package safetensors_test

import (
	"errors"
	"testing"

	"github.com/actq/actq/internal/safetensors"
)

// FuzzParseHeader opens arbitrary bytes as a safetensors file. Nothing may
// panic; every error wraps ErrFormat or ErrDtype; an accepted file's
// tensors tile its data section, and each can be read (as bytes, and as
// float32 when its dtype allows) without error.
func FuzzParseHeader(f *testing.F) {
	for _, tc := range headerCases() {
		f.Add(tc.b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		file, err := safetensors.OpenBytes(testPath, b)
		if err != nil {
			if !errors.Is(err, safetensors.ErrFormat) && !errors.Is(err, safetensors.ErrDtype) {
				t.Fatalf("error wraps neither ErrFormat nor ErrDtype: %v", err)
			}
			return
		}
		checkTiling(t, "fuzz", file, int64(len(b)))
		for _, info := range file.Tensors() {
			raw := make([]byte, info.Size)
			if err := file.ReadRaw(info.Name, raw); err != nil {
				t.Fatalf("ReadRaw(%q): %v", info.Name, err)
			}
			dst := make([]float32, info.Len())
			err := file.ReadFloat32(info.Name, dst)
			switch info.Dtype {
			case safetensors.F32, safetensors.F16, safetensors.BF16:
				if err != nil {
					t.Fatalf("ReadFloat32(%q): %v", info.Name, err)
				}
			default:
				if !errors.Is(err, safetensors.ErrDtype) {
					t.Fatalf("ReadFloat32(%q) of %v: %v, want ErrDtype", info.Name, info.Dtype, err)
				}
			}
		}
	})
}
