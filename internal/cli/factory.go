package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"

	"github.com/msctl/msctl/internal/config"
	"github.com/msctl/msctl/internal/iostreams"
	"github.com/msctl/msctl/internal/output"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// Factory carries what commands share: the streams, the resolved global
// settings, and lazily built expensive things. Nothing here reads a file or
// dials a cluster until a command asks, so --help and version stay instant.
type Factory struct {
	IO *iostreams.IOStreams
	// Format is the resolved -o/--output.
	Format output.Format
	// Log writes progress and diagnostics to stderr.
	Log *slog.Logger

	// v is msctl's one viper instance: flag, then MSCTL_* variable, then
	// default. Values from the project file are applied by config.Load.
	v     *viper.Viper
	flags *pflag.FlagSet

	projectOnce sync.Once
	project     *config.Loaded
	projectErr  error

	// Deployments connects to the project's cluster; tests replace it.
	Deployments func(ctx context.Context) (Deployments, error)
}

// Keys of the command line's own settings in viper (not project keys).
const (
	keyConfig  = "config"
	keyOutput  = "output"
	keyNoColor = "no-color"
	keyVerbose = "verbose"
	keyQuiet   = "quiet"
)

// cliSettings bind the command line's own settings to their variables.
var cliSettings = []struct {
	key, env string
	def      any
}{
	{keyConfig, "MSCTL_CONFIG", ""},
	{keyOutput, "MSCTL_OUTPUT", string(output.Table)},
	{keyNoColor, "MSCTL_NO_COLOR", false},
	{keyVerbose, "MSCTL_VERBOSE", false},
	{keyQuiet, "MSCTL_QUIET", false},
}

func newFactory(streams *iostreams.IOStreams) *Factory {
	f := &Factory{IO: streams, v: viper.New(), Log: slog.New(slog.DiscardHandler)}
	f.Deployments = f.connectDeployments
	return f
}

// bind wires the global flags and variables into viper. Project settings get
// no viper default: the file and config's defaults come after them.
func (f *Factory) bind(flags *pflag.FlagSet) error {
	f.flags = flags
	for _, s := range cliSettings {
		f.v.SetDefault(s.key, s.def)
		if err := f.v.BindEnv(s.key, s.env); err != nil {
			return err
		}
		if err := f.v.BindPFlag(s.key, flags.Lookup(s.key)); err != nil {
			return err
		}
	}
	for _, s := range config.Settings() {
		if err := f.v.BindEnv(s.Key, s.Env); err != nil {
			return err
		}
		if s.Flag != "" {
			if err := f.v.BindPFlag(s.Key, flags.Lookup(s.Flag)); err != nil {
				return err
			}
		}
	}
	return nil
}

// resolve settles the global settings once flags are parsed.
func (f *Factory) resolve() error {
	format, err := output.ParseFormat(f.v.GetString(keyOutput))
	if err != nil {
		return &UsageError{Err: fmt.Errorf("%s: %w", f.origin(keyOutput, "MSCTL_OUTPUT", "--output"), err)}
	}
	f.Format = format
	verbose, quiet := f.v.GetBool(keyVerbose), f.v.GetBool(keyQuiet)
	if verbose && quiet {
		return &UsageError{Err: fmt.Errorf("--verbose and --quiet cannot be used together")}
	}
	if f.v.GetBool(keyNoColor) {
		f.IO.DisableColor()
	}
	level := slog.LevelInfo
	switch {
	case verbose:
		level = slog.LevelDebug
	case quiet:
		level = slog.LevelError
	}
	opts := &slog.HandlerOptions{Level: level}
	if f.IO.IsStderrTTY() {
		f.Log = slog.New(slog.NewTextHandler(f.IO.ErrOut, opts))
	} else {
		f.Log = slog.New(slog.NewJSONHandler(f.IO.ErrOut, opts))
	}
	return nil
}

// Quiet reports whether -q asked for results only, no progress.
func (f *Factory) Quiet() bool { return f.v.GetBool(keyQuiet) }

// origin names where a command-line setting came from, for messages.
func (f *Factory) origin(key, env, flag string) string {
	if fl := f.flags.Lookup(key); fl != nil && fl.Changed {
		return "flag " + flag
	}
	if v, ok := os.LookupEnv(env); ok && v != "" {
		return "env " + env
	}
	return key
}

// overrides lists the project settings that a flag or variable sets, with
// their origins; the file and defaults are config.Load's business.
func (f *Factory) overrides() []config.Override {
	var out []config.Override
	for _, s := range config.Settings() {
		var origin string
		if s.Flag != "" && f.flags.Lookup(s.Flag).Changed {
			origin = "flag --" + s.Flag
		} else if v, ok := os.LookupEnv(s.Env); ok && v != "" {
			origin = "env " + s.Env
		} else {
			continue
		}
		out = append(out, config.Override{Key: s.Key, Value: f.v.GetString(s.Key), Origin: origin})
	}
	return out
}

// Project loads the project file once: --config (or MSCTL_CONFIG) if set,
// else ./msctl.yaml, else $XDG_CONFIG_HOME/msctl/config.yaml. Any problem
// fails it, the canary blocks' too.
func (f *Factory) Project() (*config.Loaded, error) {
	l, err := f.projectExceptCanary()
	if err == nil && l.CanaryErr != nil {
		return nil, l.CanaryErr
	}
	return l, err
}

// projectExceptCanary is Project with the canary blocks' problems left in
// Loaded.CanaryErr: for what reads or acts on a canary in progress, which
// keeps the plan it started with, and for connecting to the cluster.
func (f *Factory) projectExceptCanary() (*config.Loaded, error) {
	f.projectOnce.Do(func() {
		path, err := config.Find(f.v.GetString(keyConfig))
		if err != nil {
			f.projectErr = err
			return
		}
		f.Log.Debug("loading project file", "path", path)
		f.project, f.projectErr = config.LoadExceptCanary(path, f.overrides())
	})
	return f.project, f.projectErr
}

// Print writes a command's result to stdout in the chosen format.
func (f *Factory) Print(v any) error {
	return output.Write(f.IO.Out, f.Format, v, output.Options{Color: f.IO.ColorEnabled()})
}
