package studyio

import (
	"fmt"
	"io"
	"strings"
)

// Table accumulates rows and prints them with aligned columns.
type Table struct {
	Header []string
	Rows   [][]string
	Left   int // leading columns aligned left (0 means 1: labels then numbers)
}

// Add appends a row; a row without cells separates groups of rows.
func (t *Table) Add(cells ...string) { t.Rows = append(t.Rows, cells) }

// widths returns the width in runes of each column over the header and
// rows, with the cells transformed by cell.
func (t *Table) widths(cell func(string) string) []int {
	widths := make([]int, len(t.Header))
	for _, r := range append([][]string{t.Header}, t.Rows...) {
		for i, c := range r {
			if i < len(widths) {
				widths[i] = max(widths[i], len([]rune(cell(c))))
			}
		}
	}
	return widths
}

// left reports whether column i is aligned left.
func (t *Table) left(i int) bool { return i < max(1, t.Left) }

// pad pads c with spaces to width runes, on the right for a left-aligned
// column and on the left for the others.
func (t *Table) pad(i int, c string, width int) string {
	p := strings.Repeat(" ", width-len([]rune(c)))
	if t.left(i) {
		return c + p
	}
	return p + c
}

// Fprint writes the table as aligned text: the first Left columns (at
// least one) left-aligned, the others right-aligned, a rule under the
// header. An empty row prints as a blank line.
func (t *Table) Fprint(w io.Writer) {
	widths := t.widths(func(c string) string { return c })
	for ri, r := range append([][]string{t.Header}, t.Rows...) {
		var b strings.Builder
		for i, c := range r {
			if i > 0 {
				b.WriteString("  ")
			}
			b.WriteString(t.pad(i, c, widths[i]))
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
		if ri == 0 {
			total := 0
			for _, wd := range widths {
				total += wd + 2
			}
			fmt.Fprintln(w, strings.Repeat("─", total-2))
		}
	}
}

// FprintMarkdown writes the table as a GitHub Markdown table with the same
// alignment, its columns padded so that the source reads as a table too.
// Empty rows are left out (a Markdown table has no blank rows) and a | in
// a cell is escaped.
func (t *Table) FprintMarkdown(w io.Writer) {
	esc := func(c string) string { return strings.ReplaceAll(c, "|", `\|`) }
	widths := t.widths(esc)
	for i := range widths {
		widths[i] = max(3, widths[i]) // a delimiter cell has at least three characters
	}
	line := func(cells []string) {
		var b strings.Builder
		b.WriteString("|")
		for i := range t.Header {
			c := ""
			if i < len(cells) {
				c = esc(cells[i])
			}
			b.WriteString(" " + t.pad(i, c, widths[i]) + " |")
		}
		fmt.Fprintln(w, b.String())
	}
	line(t.Header)
	rule := make([]string, len(t.Header))
	for i, wd := range widths {
		rule[i] = strings.Repeat("-", wd-1) + ":"
		if t.left(i) {
			rule[i] = strings.Repeat("-", wd)
		}
	}
	fmt.Fprintln(w, "| "+strings.Join(rule, " | ")+" |")
	for _, r := range t.Rows {
		if len(r) > 0 {
			line(r)
		}
	}
}

// Format is how a Report is written.
type Format int

const (
	// Text is for a terminal: aligned columns, indented lists.
	Text Format = iota
	// Markdown is GitHub Markdown: its tables paste into a README.
	Markdown
)

// Report writes a study's report in one Format. A study writes its report
// once, through a Report, and gets it in both formats.
type Report struct {
	w      io.Writer
	format Format
	last   [2]byte // the last two bytes written, to know where a blank line is
	block  int     // the Markdown block just written: blockNone, blockList or blockTable
}

const (
	blockNone = iota
	blockList
	blockTable
)

// NewReport returns a Report writing to w in format f.
func NewReport(w io.Writer, f Format) *Report { return &Report{w: w, format: f} }

func (r *Report) write(s string) {
	io.WriteString(r.w, s)
	switch n := len(s); {
	case n >= 2:
		r.last = [2]byte{s[n-2], s[n-1]}
	case n == 1:
		r.last = [2]byte{r.last[1], s[0]}
	}
}

// endBlock closes a Markdown list or table before other text: without a
// blank line, the next line would continue the list item or become a row.
func (r *Report) endBlock(next string) {
	if r.block != blockNone && !strings.HasPrefix(next, "\n") {
		r.write("\n")
	}
	r.block = blockNone
}

// Printf writes formatted text, the same in both formats.
func (r *Report) Printf(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	if r.format == Markdown {
		r.endBlock(s)
	}
	r.write(s)
}

// Item writes one entry of a list of names and what they stand for: in
// Text, indented by two spaces with the name padded to width; in Markdown,
// a list item with the name in bold.
func (r *Report) Item(width int, name, desc string) {
	if r.format == Text {
		r.write(fmt.Sprintf("  %-*s %s\n", width, name, desc))
		return
	}
	if r.block == blockTable {
		r.write("\n")
	}
	r.block = blockList
	r.write(fmt.Sprintf("- **%s** %s\n", name, desc))
}

// Table writes t: as aligned text, or as a Markdown table set apart by
// blank lines.
func (r *Report) Table(t *Table) {
	if r.format == Text {
		t.Fprint(r.w)
		return
	}
	if r.last != [2]byte{'\n', '\n'} && r.last != [2]byte{} {
		r.write("\n")
	}
	var b strings.Builder
	t.FprintMarkdown(&b)
	r.write(b.String())
	r.block = blockTable
}
