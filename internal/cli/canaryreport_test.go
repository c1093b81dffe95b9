package cli

import (
	"encoding/xml"
	"strings"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/analysis"
	"github.com/msctl/msctl/internal/canary"
	"github.com/msctl/msctl/internal/canarystate"
	"github.com/msctl/msctl/internal/config"
	"github.com/msctl/msctl/internal/output"
)

func sampleState() *canarystate.State {
	at := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	v, minimum := analysis.Number(80), analysis.Number(99)
	return &canarystate.State{
		Service: "payment", Phase: canarystate.RolledBack, Reason: "request-success-rate: success rate 80% (80 of 100 requests) < 99%",
		Steps: []canarystate.Step{{Kind: config.StepWeight, Weight: 25}, {Kind: config.StepPause}, {Kind: config.StepWeight, Weight: 100}}, Step: 0,
		CanaryImage: "r/payment:v2", StableImage: "r/payment:v1", StableRevision: 3,
		Checks: []analysis.Check{
			{Metric: "request-success-rate", Rule: analysis.DecisionSequential, Decision: analysis.Hold, Reason: "too few requests | yet", At: at, Requests: 5, Alpha: 0.01},
			{Metric: "request-success-rate", Rule: analysis.DecisionSequential, Decision: analysis.Fail, Reason: "success rate 80%", At: at.Add(5 * time.Second),
				Value: &v, Min: &minimum, Requests: 100, Errors: 20, Evidence: 1e6, Alpha: 0.01, Query: "sum(\n rate(x[1m]))"},
		},
	}
}

func TestCanaryOutputs(t *testing.T) {
	st := sampleState()
	var b strings.Builder
	if err := output.Write(&b, output.Table, canaryStates{st}, output.Options{}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"payment", "RolledBack: request-success-rate", "1/3 weight 25%", "100/0", "r/payment:v2", "request-success-rate 80.00 (min 99) fail"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
	text := explanation{st}.Text()
	for _, want := range []string{"Canary of payment: r/payment:v1 -> r/payment:v2, RolledBack", "FAIL (sequential rule)", "evidence: 1e+06 against a bar of 100", "query:    sum( rate(x[1m]))"} {
		if !strings.Contains(text, want) {
			t.Errorf("explain lacks %q:\n%s", want, text)
		}
	}
	md := markdownSummary(st, &canary.OutcomeError{Service: "payment", Phase: canarystate.RolledBack})
	if !strings.Contains(md, "### ⏪ Canary of `payment`: RolledBack") || !strings.Contains(md, `too few requests \| yet`) {
		t.Errorf("summary:\n%s", md)
	}
	x, err := junitReport(st)
	if err != nil {
		t.Fatal(err)
	}
	var suite junitSuite
	if err := xml.Unmarshal(x, &suite); err != nil {
		t.Fatal(err)
	}
	if suite.Tests != 2 || suite.Failures != 1 || suite.Skipped != 1 || suite.Cases[1].Failure == nil {
		t.Errorf("junit %+v", suite)
	}
}
