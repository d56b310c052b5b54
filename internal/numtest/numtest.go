// Package numtest holds the tolerance helpers and the golden-file reader
// shared by actq's tests.
package numtest

import (
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
)

// Tol is a tolerance of the API contract: |got−want| ≤ Abs + Rel·|want|.
type Tol struct{ Abs, Rel float64 }

var (
	// Contract32 is the contract's float32 tolerance against PyTorch.
	Contract32 = Tol{Abs: 1e-6, Rel: 2e-5}
	// Contract64 is the contract's float64 tolerance against PyTorch.
	Contract64 = Tol{Abs: 1e-12, Rel: 1e-10}
)

// ContractTol returns the contract's tolerance for a dtype named "float32"
// or "float64".
func ContractTol(dtype string) Tol {
	if dtype == "float32" {
		return Contract32
	}
	return Contract64
}

// Close reports whether got is within t of want. NaN matches NaN, and an
// infinity matches only the same infinity.
func (t Tol) Close(got, want float64) bool {
	if math.IsNaN(want) || math.IsNaN(got) {
		return math.IsNaN(want) && math.IsNaN(got)
	}
	if math.IsInf(want, 0) || math.IsInf(got, 0) {
		return got == want
	}
	return math.Abs(got-want) <= t.Abs+t.Rel*math.Abs(want)
}

// Excess returns |got−want| / (Abs + Rel·|want|): how much of the tolerance
// is used (≤ 1 passes). Matching NaNs and infinities give 0; a mismatch
// among them gives +Inf.
func (t Tol) Excess(got, want float64) float64 {
	if math.IsNaN(want) || math.IsNaN(got) || math.IsInf(want, 0) || math.IsInf(got, 0) {
		if t.Close(got, want) {
			return 0
		}
		return math.Inf(1)
	}
	return math.Abs(got-want) / (t.Abs + t.Rel*math.Abs(want))
}

// Alike reports whether a and b are the same value: NaN matches NaN and the
// sign of zero counts.
func Alike(a, b float64) bool {
	switch {
	case math.IsNaN(a) || math.IsNaN(b):
		return math.IsNaN(a) && math.IsNaN(b)
	case a == b:
		return math.Signbit(a) == math.Signbit(b)
	}
	return false
}

// ULP32 returns the distance between a and b in float32 units in the last
// place (0 for equal values, including +0 and −0). NaN gives MaxUint32.
func ULP32(a, b float32) uint32 {
	if a != a || b != b {
		return math.MaxUint32
	}
	ia, ib := ordered32(a), ordered32(b)
	if ia > ib {
		return uint32(ia - ib)
	}
	return uint32(ib - ia)
}

func ordered32(f float32) int64 {
	u := math.Float32bits(f)
	if u&0x80000000 != 0 {
		return -int64(u & 0x7fffffff)
	}
	return int64(u)
}

// ULP64 returns the distance between a and b in float64 ULPs (saturating).
func ULP64(a, b float64) uint64 {
	if a != a || b != b {
		return math.MaxUint64
	}
	ia, ib := ordered64(a), ordered64(b)
	if ia > ib {
		return uint64(ia) - uint64(ib)
	}
	return uint64(ib) - uint64(ia)
}

func ordered64(f float64) int64 {
	u := math.Float64bits(f)
	if u&(1<<63) != 0 {
		return -int64(u &^ (1 << 63))
	}
	return int64(u)
}

// Golden is a golden file written by scripts/goldens: where it came from and
// its cases.
type Golden struct {
	Generator string          `json:"generator"`
	Torch     string          `json:"torch"`
	Cases     []Case          `json:"cases"`
	Meta      json.RawMessage `json:"meta,omitempty"`
}

// Case is one golden case: an op applied to named arrays. Arrays hold the
// exact values as decimal strings (Python repr, "nan", "inf", "-inf"), so a
// float32 value read as float64 and converted back is the same bits.
type Case struct {
	Name   string              `json:"name"`
	Op     string              `json:"op"`
	Dtype  string              `json:"dtype"`
	Shape  []int               `json:"shape"`
	Params json.RawMessage     `json:"params,omitempty"`
	Arrays map[string][]string `json:"arrays"`
}

// ReadGolden reads a golden JSON file, gzip-compressed if its name ends in
// ".gz".
func ReadGolden(path string) (*Golden, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		defer zr.Close()
		r = zr
	}
	var g Golden
	if err := json.NewDecoder(r).Decode(&g); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &g, nil
}

// F64 returns the named array as float64 values.
func (c *Case) F64(name string) ([]float64, error) {
	raw, ok := c.Arrays[name]
	if !ok {
		return nil, fmt.Errorf("case %q: no array %q", c.Name, name)
	}
	out := make([]float64, len(raw))
	for i, s := range raw {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("case %q: %s[%d]: %w", c.Name, name, i, err)
		}
		out[i] = v
	}
	return out, nil
}

// F32 returns the named array as float32 values.
func (c *Case) F32(name string) ([]float32, error) {
	v64, err := c.F64(name)
	if err != nil {
		return nil, err
	}
	out := make([]float32, len(v64))
	for i, v := range v64 {
		out[i] = float32(v)
	}
	return out, nil
}

// ParamsInto decodes the case's params into v.
func (c *Case) ParamsInto(v any) error {
	if len(c.Params) == 0 {
		return nil
	}
	return json.Unmarshal(c.Params, v)
}
