package cli

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/msctl/msctl/internal/local"
	"github.com/msctl/msctl/internal/local/load"
	"github.com/msctl/msctl/internal/output"
	"github.com/spf13/cobra"
)

// LoadOptions are the inputs of `msctl load`.
type LoadOptions struct {
	Rate     float64
	Duration time.Duration
	Routes   []string
}

// loadResult prints the whole run's numbers.
type loadResult struct{ load.Window }

func (r loadResult) Table() output.TableData {
	return output.TableData{
		Header: []string{"REQUESTS", "RATE", "ERRORS", "P50", "P95", "P99", "CODES"},
		Rows: [][]string{{fmt.Sprint(r.Requests), fmt.Sprintf("%.1f/s", r.Rate), fmt.Sprintf("%d (%.1f%%)", r.Errors, 100*r.ErrorRate),
			ms(r.P50), ms(r.P95), ms(r.P99), codes(r.Codes)}},
	}
}

func ms(v float64) string { return fmt.Sprintf("%.1fms", v) }

func codes(c map[string]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(c)) {
		parts = append(parts, fmt.Sprintf("%s:%d", k, c[k]))
	}
	return strings.Join(parts, " ")
}

// NewCmdLoad builds `msctl load`.
func NewCmdLoad(f *Factory, runF func(*LoadOptions) error) *cobra.Command {
	opts := &LoadOptions{}
	cmd := &cobra.Command{
		Use:   "load [--rate R] [--duration D] [--route PATH...]",
		Short: "Send built-in load through the local gateway",
		Long: fmt.Sprintf(`Load sends requests that succeed against the bundled services through the
gateway of msctl up: it creates a user and a product, then places orders,
lists products and creates users, at --rate requests a second (at most %d),
to loopback addresses only. A live line on stderr shows the rate, errors and
latency; at the end the whole run's numbers go to stdout (-o json for CI).
Ctrl-C ends it early and still prints them.`, load.MaxRate),
		Example: `  msctl load --rate 50 --duration 30s
  msctl load --route /api/v1/orders -o json`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !(opts.Rate > 0 && opts.Rate <= load.MaxRate) { // NaN too
				return &UsageError{Err: fmt.Errorf("--rate %g: want above 0 and at most %d requests a second", opts.Rate, load.MaxRate)}
			}
			if opts.Duration < 0 {
				return &UsageError{Err: fmt.Errorf("--duration %s: want a positive duration, or 0 until Ctrl-C", opts.Duration)}
			}
			if err := load.CheckRoutes(opts.Routes); err != nil {
				return &UsageError{Err: fmt.Errorf("--route: %v", err)}
			}
			if runF != nil {
				return runF(opts)
			}
			return runLoad(cmd.Context(), f, opts)
		},
	}
	cmd.Flags().Float64Var(&opts.Rate, "rate", 20, "requests a second")
	cmd.Flags().DurationVar(&opts.Duration, "duration", 0, "how long (0: until Ctrl-C)")
	cmd.Flags().StringArrayVar(&opts.Routes, "route", nil, "only these routes: "+strings.Join(load.Routes, ", ")+" (repeatable)")
	return cmd
}

func runLoad(ctx context.Context, f *Factory, opts *LoadOptions) error {
	lp, err := f.localProject(nil)
	if err != nil {
		return err
	}
	runDir := lp.runDir
	client, err := local.Connect(runDir)
	if err != nil {
		return err
	}
	st, err := client.Status(ctx)
	if err != nil {
		return err
	}
	key, err := os.ReadFile(local.AdminKeyFile(runDir))
	if err != nil {
		return fmt.Errorf("the run's API key: %w", err)
	}
	o := load.Options{Target: st.GatewayURL, APIKey: strings.TrimSpace(string(key)), Rate: opts.Rate, Duration: opts.Duration, Routes: opts.Routes}
	if f.IO.IsStderrTTY() && !f.Quiet() {
		o.Progress = func(w load.Window) {
			fmt.Fprintf(f.IO.ErrOut, "\r\033[K%5.1f req/s  errors %4.1f%%  p50 %s  p95 %s  p99 %s  (%s)",
				w.Rate, 100*w.ErrorRate, ms(w.P50), ms(w.P95), ms(w.P99), w.Elapsed.Round(time.Second))
		}
	}
	w, err := load.Run(ctx, o)
	if o.Progress != nil {
		fmt.Fprintln(f.IO.ErrOut)
	}
	if err != nil {
		return err
	}
	return f.Print(loadResult{w})
}
