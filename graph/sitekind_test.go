package graph

import (
	"fmt"
	"reflect"
	"testing"
)

// TestSiteKinds checks the index of site kinds against Plan: every *Quant
// field of Plan belongs to exactly one kind, each kind has its own name,
// and PassthroughPlan, For and Clone reach every kind, so that a kind added
// to Plan but not to siteKinds (or the reverse) fails here.
func TestSiteKinds(t *testing.T) {
	quantType := reflect.TypeFor[*Quant]()
	var fields int
	for f := range reflect.TypeFor[Plan]().Fields() {
		if f.Type == quantType {
			fields++
		}
	}
	var p Plan
	seen := map[**Quant]SiteKind{}
	names := map[string]SiteKind{}
	var kinds []SiteKind
	eachSiteKind(func(k SiteKind, info *siteKind) {
		kinds = append(kinds, k)
		f := info.quant(&p)
		if other, dup := seen[f]; dup {
			t.Errorf("%v and %v share a Plan field", k, other)
		}
		seen[f] = k
		if other, dup := names[k.String()]; dup || k.String() == "" {
			t.Errorf("%v: name %q (also %v)", k, k.String(), other)
		}
		names[k.String()] = k
	})
	if len(seen) != fields {
		t.Errorf("%d site kinds for %d *Quant fields of Plan", len(seen), fields)
	}
	pp := PassthroughPlan()
	c := pp.Clone()
	for _, k := range kinds {
		q, cq := pp.For("any", k), c.For("any", k)
		if q == nil || !q.Passthrough || cq == nil || !cq.Passthrough || cq == q {
			t.Errorf("%v: PassthroughPlan gives %+v, its clone %+v (want Passthrough, copied)", k, q, cq)
		}
	}
	for _, k := range []SiteKind{0, SiteKind(len(kinds) + 1)} {
		if q := pp.For("any", k); q != nil || k.String() != fmt.Sprintf("SiteKind(%d)", k) {
			t.Errorf("unknown kind %d: For gives %v, String %q", k, q, k.String())
		}
	}
	if !SiteWeight.isWeight() || !SiteHead.isWeight() || SiteFFNHidden.isWeight() {
		t.Error("isWeight: want true for weight and head sites only")
	}
}
