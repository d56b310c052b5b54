package studyio

import (
	"encoding/json"
	"math"
	"slices"
	"strings"
	"testing"
)

func TestParseSeeds(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []uint64
		err  string
	}{
		{"1", []uint64{1}, ""},
		{" 3, 1 ,2,", []uint64{3, 1, 2}, ""},
		{"18446744073709551615", []uint64{math.MaxUint64}, ""},
		{"", nil, "at least one seed"},
		{"1,x", nil, `seed "x" is not an unsigned integer`},
		{"-1", nil, `seed "-1" is not`},
		{"2,2", nil, "seed 2 given twice"},
	} {
		got, err := ParseSeeds(c.in)
		switch {
		case c.err == "" && (err != nil || !slices.Equal(got, c.want)):
			t.Errorf("ParseSeeds(%q) = %v, %v; want %v", c.in, got, err, c.want)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("ParseSeeds(%q): error %v, want %q", c.in, err, c.err)
		}
		if c.err == "" {
			if back, _ := ParseSeeds(JoinSeeds(got)); !slices.Equal(back, got) {
				t.Errorf("JoinSeeds(%v) = %q does not read back", got, JoinSeeds(got))
			}
		}
	}
}

func TestAcrossSeeds(t *testing.T) {
	nan := math.NaN()
	for _, c := range []struct {
		name           string
		values, within []float64
		mean, se       float64
	}{
		// mean 2, s² = ((1−2)² + 0 + (3−2)²)/2 = 1, SE = 1/√3.
		{"three", []float64{1, 2, 3}, nil, 2, 1 / math.Sqrt(3)},
		{"three, within ignored", []float64{1, 2, 3}, []float64{9, 9, 9}, 2, 1 / math.Sqrt(3)},
		{"two equal", []float64{0.5, 0.5}, nil, 0.5, 0},
		{"one with its own SE", []float64{4}, []float64{0.25}, 4, 0.25},
		{"one without", []float64{4}, nil, 4, nan},
		{"a NaN value", []float64{1, nan}, nil, nan, nan},
		{"none", nil, nil, nan, nan},
	} {
		e := AcrossSeeds(c.values, c.within)
		same := func(a, b float64) bool { return a == b || math.IsNaN(a) && math.IsNaN(b) || math.Abs(a-b) < 1e-15 }
		if !same(float64(e.Mean), c.mean) || !same(float64(e.SE), c.se) || e.Seeds != len(c.values) {
			t.Errorf("%s: %+v, want mean %v, SE %v, %d seeds", c.name, e, c.mean, c.se, len(c.values))
		}
	}
}

func TestEstimateFormatAndJSON(t *testing.T) {
	pts := Number.Points
	for _, c := range []struct {
		e    Estimate
		want string
	}{
		{Estimate{Mean: 1.234, SE: 0.5, Seeds: 3}, "1.23 ±0.50"},
		{Estimate{Mean: 1.234, SE: Number(math.NaN()), Seeds: 1}, "1.23"},
		{Estimate{Mean: Number(math.NaN()), SE: 0.1}, "—"},
	} {
		if got := c.e.Format(pts); got != c.want {
			t.Errorf("%+v: %q, want %q", c.e, got, c.want)
		}
	}
	b, err := json.Marshal(Estimate{Mean: 2, SE: Number(math.NaN()), Seeds: 1})
	if err != nil || string(b) != `{"mean":2,"se":null,"seeds":1}` {
		t.Errorf("JSON %s, %v", b, err)
	}
}

func TestShard(t *testing.T) {
	for _, c := range []struct {
		in  string
		err string
	}{
		{"", ""}, {"1/1", ""}, {"3/8", ""}, {" 2 / 3 ", ""},
		{"0/3", "want 1 ≤ i ≤ n"}, {"4/3", "want 1 ≤ i ≤ n"}, {"1/0", "want 1 ≤ i ≤ n"},
		{"2", "want i/n"}, {"a/b", "want i/n"}, {"1/2/3", "want i/n"},
	} {
		s, err := ParseShard(c.in)
		switch {
		case c.err == "" && err != nil:
			t.Errorf("ParseShard(%q): %v", c.in, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("ParseShard(%q) = %v, %v; want an error with %q", c.in, s, err, c.err)
		case c.err == "" && c.in != "" && s.String() != strings.ReplaceAll(c.in, " ", ""):
			t.Errorf("ParseShard(%q).String() = %q", c.in, s.String())
		}
	}
	if lo, hi := (Shard{}).Range(7); lo != 0 || hi != 7 || !(Shard{}).Whole() || !(Shard{1, 1}).Whole() || (Shard{1, 2}).Whole() {
		t.Errorf("the whole sweep: [%d, %d)", lo, hi)
	}
	// Every split covers every unit once, in order, sizes within one.
	for n := 0; n <= 12; n++ {
		for count := 1; count <= 14; count++ {
			next, small, large := 0, n, 0
			for i := 1; i <= count; i++ {
				lo, hi := Shard{i, count}.Range(n)
				if lo != next || hi < lo {
					t.Fatalf("n %d, shard %d/%d: [%d, %d) after %d", n, i, count, lo, hi, next)
				}
				next = hi
				small, large = min(small, hi-lo), max(large, hi-lo)
			}
			if next != n || large-small > 1 {
				t.Errorf("n %d in %d shards: covers %d, sizes %d to %d", n, count, next, small, large)
			}
		}
	}
}

func TestPairedSE(t *testing.T) {
	T, F := true, false
	// b = 2 (right only in base), c = 1, N = 4: √(3 − 1/4)/4·100.
	if got, want := PairedSE([]bool{T, T, F, T}, []bool{F, F, T, T}), 100*math.Sqrt(2.75)/4; math.Abs(got-want) > 1e-12 {
		t.Errorf("PairedSE = %v, want %v", got, want)
	}
	if got := PairedSE([]bool{T, F}, []bool{T, F}); got != 0 {
		t.Errorf("identical: %v, want 0", got)
	}
	if !math.IsNaN(PairedSE([]bool{T}, nil)) || !math.IsNaN(PairedSE(nil, nil)) {
		t.Error("mismatched or empty: want NaN")
	}
}

func TestNumberJSONRoundTrip(t *testing.T) {
	in := []Number{1.5, Number(math.NaN()), Number(math.Inf(1)), -0.25, 1e-300}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out []Number
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	want := []float64{1.5, math.NaN(), math.NaN(), -0.25, 1e-300}
	for i, w := range want {
		if g := float64(out[i]); g != w && !(math.IsNaN(g) && math.IsNaN(w)) {
			t.Errorf("%d: %v read back as %v, want %v", i, in[i], g, w)
		}
	}
	var n Number
	if err := json.Unmarshal([]byte(`"x"`), &n); err == nil {
		t.Error("a string decoded as a Number")
	}
}
