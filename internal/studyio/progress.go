package studyio

import (
	"fmt"
	"io"

	"github.com/schollz/progressbar/v3"
)

// Progress is a progress bar on w (os.Stderr in the studies), or a no-op
// when disabled.
type Progress struct{ bar *progressbar.ProgressBar }

// NewProgress returns a bar for total steps described by desc.
func NewProgress(w io.Writer, enabled bool, total int, desc string) *Progress {
	if !enabled {
		return &Progress{}
	}
	return &Progress{bar: progressbar.NewOptions(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowCount(),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100_000_000),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
	)}
}

// Add advances the bar by n steps.
func (p *Progress) Add(n int) {
	if p.bar != nil {
		_ = p.bar.Add(n)
	}
}

// Describe changes the bar's description.
func (p *Progress) Describe(desc string) {
	if p.bar != nil {
		p.bar.Describe(desc)
	}
}

// Finish completes the bar.
func (p *Progress) Finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
	}
}
