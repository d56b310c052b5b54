package studyio

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Series is one named line of a plot. Points with a NaN or infinite Y are
// left out (and, on a log axis, points with Y ≤ 0).
type Series struct {
	Name string
	X, Y []float64
}

// LinePlot describes a line plot.
type LinePlot struct {
	Title, XLabel, YLabel string
	LogX, LogY            bool
	// XTicks, if not empty, are the only labelled ticks of the x axis (the
	// lengths of a sweep, say), in place of the axis' default ticks.
	XTicks []float64
	Series []Series
}

// Save writes the plot as a PNG to path, creating its directory.
func (lp LinePlot) Save(path string) error {
	p, legend, err := lp.build()
	if err != nil {
		return err
	}
	return saveWithLegend(p, legend, path, 9, 5)
}

// build makes the plot and its legend.
func (lp LinePlot) build() (*plot.Plot, plot.Legend, error) {
	p := plot.New()
	p.Title.Text = lp.Title
	p.X.Label.Text = lp.XLabel
	p.Y.Label.Text = lp.YLabel
	if lp.LogX {
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = decadeTicks{}
	}
	if len(lp.XTicks) > 0 {
		ticks := make(plot.ConstantTicks, len(lp.XTicks))
		for i, v := range lp.XTicks {
			ticks[i] = plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'g', -1, 64)}
		}
		p.X.Tick.Marker = ticks
	}
	if lp.LogY {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = decadeTicks{}
	}
	p.Add(plotter.NewGrid())
	legend := plot.NewLegend()
	legend.Top, legend.Left = true, true
	drawn := 0
	for i, s := range lp.Series {
		var pts plotter.XYs
		for k := range s.X {
			x, y := s.X[k], s.Y[k]
			if math.IsNaN(y) || math.IsInf(y, 0) || (lp.LogY && y <= 0) || (lp.LogX && x <= 0) {
				continue
			}
			pts = append(pts, plotter.XY{X: x, Y: y})
		}
		if len(pts) == 0 {
			continue
		}
		line, points, err := plotter.NewLinePoints(pts)
		if err != nil {
			return nil, legend, err
		}
		c := plotutil.Color(i)
		line.Color, points.Color = c, c
		line.Dashes = plotutil.Dashes(i / 7)
		points.Shape = plotutil.Shape(i)
		p.Add(line, points)
		legend.Add(s.Name, line, points)
		drawn++
	}
	if drawn == 0 {
		return nil, legend, fmt.Errorf("plot %q: no drawable points", lp.Title)
	}
	return p, legend, nil
}

// decadeTicks labels powers of ten (every k-th one when there are many
// decades), with minor ticks between; the labels are exact ("1e-15", "0.01",
// "1000"), unlike plot.LogTicks' accumulated products.
type decadeTicks struct{}

func (decadeTicks) Ticks(lo, hi float64) []plot.Tick {
	first, last := int(math.Floor(math.Log10(lo))), int(math.Ceil(math.Log10(hi)))
	step := max(1, (last-first+7)/8)
	var ticks []plot.Tick
	for e := first; e <= last; e++ {
		v := math.Pow10(e)
		t := plot.Tick{Value: v}
		if (e-first)%step == 0 {
			t.Label = strconv.FormatFloat(v, 'g', -1, 64)
		}
		ticks = append(ticks, t)
		if step == 1 && e < last {
			for i := 2; i < 10; i++ {
				ticks = append(ticks, plot.Tick{Value: v * float64(i)})
			}
		}
	}
	return ticks
}

// saveWithLegend draws p with its legend in a column to the right of the
// axes, where it never hides a line.
func saveWithLegend(p *plot.Plot, legend plot.Legend, path string, wIn, hIn float64) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	w, h := vg.Length(wIn)*vg.Inch, vg.Length(hIn)*vg.Inch
	img := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(96), vgimg.UseBackgroundColor(color.White))
	dc := draw.New(img)
	legendW := 2 * vg.Inch
	p.Draw(draw.Crop(dc, 0, -legendW, 0, 0))
	legend.Draw(draw.Crop(dc, w-legendW+vg.Points(6), 0, 0, -vg.Points(20)))
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// BarPlot describes a grouped bar chart: a group of bars per label along
// the x axis, one bar per series in each group.
type BarPlot struct {
	Title, YLabel string
	Groups        []string             // labels along the x axis
	Values        map[string][]float64 // series name → one value per group
	Order         []string             // the series in legend order; nil: sorted by name
}

// Save writes the grouped bar chart as a PNG to path.
func (bp BarPlot) Save(path string) error {
	p := plot.New()
	p.Title.Text = bp.Title
	p.Y.Label.Text = bp.YLabel
	names := bp.Order
	if names == nil {
		names = make([]string, 0, len(bp.Values))
		for n := range bp.Values {
			names = append(names, n)
		}
		sort.Strings(names)
	}
	legend := plot.NewLegend()
	legend.Top, legend.Left = true, true
	w := vg.Points(float64(60) / float64(max(1, len(names))))
	for i, n := range names {
		vals := make(plotter.Values, len(bp.Groups))
		for k, v := range bp.Values[n] {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				v = 0
			}
			vals[k] = v
		}
		bars, err := plotter.NewBarChart(vals, w)
		if err != nil {
			return err
		}
		bars.LineStyle.Width = 0
		bars.Color = plotutil.Color(i)
		bars.Offset = w * vg.Length(float64(i)-float64(len(names)-1)/2)
		p.Add(bars)
		legend.Add(n, bars)
	}
	p.NominalX(bp.Groups...)
	p.Add(plotter.NewGrid())
	// The y axis spans 0 and every bar (0 to 1 when all are 0), with
	// headroom so that the tallest bar does not touch the frame.
	lo, hi := 0.0, 0.0
	for _, vs := range bp.Values {
		for _, v := range vs {
			if !math.IsNaN(v) && !math.IsInf(v, 0) {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
		}
	}
	if lo == hi {
		hi = 1
	}
	pad := 0.05 * (hi - lo)
	p.Y.Min, p.Y.Max = lo, hi+pad
	if lo < 0 {
		p.Y.Min -= pad
	}
	return saveWithLegend(p, legend, path, 9, 5)
}
