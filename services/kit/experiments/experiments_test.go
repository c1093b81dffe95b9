package experiments

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func checkout() Experiment {
	return Experiment{
		ID:       "checkout-flow",
		Status:   StatusRunning,
		Variants: []Variant{{"control", 50}, {"one_page", 30}, {"express", 20}},
	}
}

var now = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

// TestAssignmentGolden pins assignments. If this fails, a change has
// moved users between variants of running experiments: revert it. The
// buckets were cross-checked with `printf 'checkout-flow:u-1' | sha256sum`.
func TestAssignmentGolden(t *testing.T) {
	e := checkout()
	for _, c := range []struct {
		user    string
		bucket  int
		variant string
	}{
		{"u-1", 8523, "one_page"},
		{"u-2", 2924, "control"},
		{"u-3", 1297, "control"},
		{"alice", 5859, "express"},
		{"bob", 3079, "control"},
		{"0190a6e4-6b2c-7c1e-8f00-2b6d2a1e9c3d", 2002, "control"},
	} {
		if got := Bucket(e.ID, c.user); got != c.bucket {
			t.Errorf("Bucket(%q, %q) = %d, want %d", e.ID, c.user, got, c.bucket)
		}
		got, ok := e.Assign(User{ID: c.user}, now)
		if !ok || got != c.variant {
			t.Errorf("Assign(%q) = %q, %v; want %q, true", c.user, got, ok, c.variant)
		}
	}
}

func TestAssignIgnoresVariantOrder(t *testing.T) {
	a := checkout()
	b := checkout()
	b.Variants = []Variant{b.Variants[2], b.Variants[0], b.Variants[1]}
	for i := range 1000 {
		u := User{ID: fmt.Sprintf("user-%d", i)}
		va, _ := a.Assign(u, now)
		vb, _ := b.Assign(u, now)
		if va != vb {
			t.Fatalf("user %s: %q with one variant order, %q with another", u.ID, va, vb)
		}
	}
}

func TestSplitWithinTolerance(t *testing.T) {
	const users = 100_000
	e := checkout()
	counts := map[string]int{}
	for i := range users {
		v, ok := e.Assign(User{ID: fmt.Sprintf("user-%d", i)}, now)
		if !ok {
			t.Fatalf("user-%d not assigned", i)
		}
		counts[v]++
	}
	for _, v := range e.Variants {
		share := float64(counts[v.Name]) / users * 100
		// Binomial standard deviation at 100k users is at most 0.16
		// percentage points; 1 point is over six of them.
		if math.Abs(share-float64(v.Percent)) > 1 {
			t.Errorf("variant %s got %.2f%% of users, want %d%% ± 1", v.Name, share, v.Percent)
		}
	}
}

func TestAssignEligibility(t *testing.T) {
	base := checkout()
	base.Targeting = Targeting{
		Segments:      []string{"beta", "staff"},
		Countries:     []string{"DE", "fr"},
		Devices:       []string{"ios"},
		MinAppVersion: "4.2",
		MaxAppVersion: "5",
	}
	base.Start = now.Add(-time.Hour)
	base.End = now.Add(time.Hour)
	good := User{ID: "u-1", Segments: []string{"other", "beta"}, Country: "de", Device: "IOS", AppVersion: "4.10.1"}

	for _, c := range []struct {
		name string
		edit func(*Experiment, *User)
		want bool
	}{
		{"eligible", func(*Experiment, *User) {}, true},
		{"min version is inclusive", func(_ *Experiment, u *User) { u.AppVersion = "4.2.0" }, true},
		{"below min version", func(_ *Experiment, u *User) { u.AppVersion = "4.1.9" }, false},
		{"max version is exclusive", func(_ *Experiment, u *User) { u.AppVersion = "5.0" }, false},
		{"unparsable version", func(_ *Experiment, u *User) { u.AppVersion = "latest" }, false},
		{"no segment in common", func(_ *Experiment, u *User) { u.Segments = []string{"other"} }, false},
		{"other country", func(_ *Experiment, u *User) { u.Country = "US" }, false},
		{"other device", func(_ *Experiment, u *User) { u.Device = "web" }, false},
		{"no user id", func(_ *Experiment, u *User) { u.ID = "" }, false},
		{"draft", func(e *Experiment, _ *User) { e.Status = StatusDraft }, false},
		{"paused", func(e *Experiment, _ *User) { e.Status = StatusPaused }, false},
		{"ended", func(e *Experiment, _ *User) { e.Status = StatusEnded }, false},
		{"before start", func(e *Experiment, _ *User) { e.Start = now.Add(time.Second) }, false},
		{"end is exclusive", func(e *Experiment, _ *User) { e.End = now }, false},
		{"open window", func(e *Experiment, _ *User) { e.Start, e.End = time.Time{}, time.Time{} }, true},
		{"no targeting", func(e *Experiment, u *User) { e.Targeting = Targeting{}; *u = User{ID: "u-1"} }, true},
		{"invalid experiment", func(e *Experiment, _ *User) { e.Variants[0].Percent = 40 }, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := base
			e.Variants = append([]Variant(nil), base.Variants...)
			u := good
			c.edit(&e, &u)
			v, ok := e.Assign(u, now)
			if ok != c.want {
				t.Fatalf("Assign = %q, %v; want assigned %v", v, ok, c.want)
			}
			if ok && v == "" {
				t.Fatal("assigned to an empty variant")
			}
		})
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(*Experiment)
		want []string // substrings of the error; none means valid
	}{
		{"valid", func(*Experiment) {}, nil},
		{"single variant at 100", func(e *Experiment) { e.Variants = []Variant{{"all", 100}} }, nil},
		{"sum 90", func(e *Experiment) { e.Variants[0].Percent = 40 },
			[]string{`experiment "checkout-flow": variants: percentages sum to 90, want 100`}},
		{"sum 110", func(e *Experiment) { e.Variants[0].Percent = 60 }, []string{"sum to 110"}},
		{"no id", func(e *Experiment) { e.ID = " " }, []string{"id: is required"}},
		{"bad status", func(e *Experiment) { e.Status = "live" }, []string{`status: "live" is not one of`}},
		{"no variants", func(e *Experiment) { e.Variants = nil }, []string{"variants: at least one variant"}},
		{"duplicate name", func(e *Experiment) { e.Variants[1].Name = "control" },
			[]string{`variants[1].name: "control" is used by another variant`}},
		{"empty name", func(e *Experiment) { e.Variants[2].Name = "" }, []string{"variants[2].name: is required"}},
		{"negative percent", func(e *Experiment) { e.Variants = []Variant{{"a", -10}, {"b", 110}} },
			[]string{"variants[0].percent: -10 is outside", "variants[1].percent: 110 is outside"}},
		{"bad version", func(e *Experiment) { e.MinAppVersion = "v4" },
			[]string{`targeting.min_app_version: "v4" is not a dotted version`}},
		{"inverted versions", func(e *Experiment) { e.MinAppVersion, e.MaxAppVersion = "5", "4.9" },
			[]string{`min_app_version "5" is not below max_app_version "4.9"`}},
		{"inverted window", func(e *Experiment) { e.Start, e.End = now, now }, []string{"end: 2026-05-01T12:00:00Z is not after start"}},
		{"several problems at once", func(e *Experiment) { e.Status = ""; e.Variants[0].Percent = 0 },
			[]string{"status:", "sum to 50"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := checkout()
			c.edit(&e)
			err := e.Validate()
			if len(c.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate() = nil, want an error")
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Experiment != e.ID {
				t.Errorf("error %v is not a *ValidationError naming experiment %q", err, e.ID)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q is not one line", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestExposures(t *testing.T) {
	reg := prometheus.NewRegistry()
	x, err := NewExposures(reg)
	if err != nil {
		t.Fatal(err)
	}
	x.Record("checkout-flow", "express")
	x.Record("checkout-flow", "express")
	x.Record("checkout-flow", "control")
	want := `
# HELP experiment_exposures_total Times a user was served a variant of an experiment.
# TYPE experiment_exposures_total counter
experiment_exposures_total{experiment="checkout-flow",variant="control"} 1
experiment_exposures_total{experiment="checkout-flow",variant="express"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "experiment_exposures_total"); err != nil {
		t.Error(err)
	}
	if _, err := NewExposures(reg); err == nil {
		t.Error("registering twice on one registry succeeded, want an error")
	}
}
