package safetensors_test

import (
	"testing"

	"github.com/actq/actq/internal/safetensors"
)

// BenchmarkReadFloat32 reads a 4 MiB-element tensor of each dtype from an
// in-memory file: the cost of the copy and the conversion without disk or
// page faults (dst is reused). Bytes are those of the file's data.
func BenchmarkReadFloat32(b *testing.B) {
	const n = 1 << 22
	for _, dt := range []string{"F32", "BF16", "F16"} {
		size := 4 * n
		if dt != "F32" {
			size = 2 * n
		}
		f, err := safetensors.OpenBytes("bench", file(`{`+entry("w", dt, "[4194304]", 0, int64(size))+`}`, size))
		if err != nil {
			b.Fatal(err)
		}
		dst := make([]float32, n)
		b.Run(dt, func(b *testing.B) {
			b.SetBytes(int64(size))
			for b.Loop() {
				if err := f.ReadFloat32("w", dst); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
