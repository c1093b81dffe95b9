package cli

import (
	"fmt"
	"maps"
	"os"
	"slices"

	"github.com/msctl/msctl/internal/config"
	"github.com/spf13/cobra"
	"helm.sh/helm/v4/pkg/strvals"
	"sigs.k8s.io/yaml"
)

// ChartValues are helm's chart value flags, which deploy and render take
// alike.
type ChartValues struct {
	Set         []string
	SetString   []string
	ValuesFiles []string
}

func (v *ChartValues) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringArrayVar(&v.Set, "set", nil, "chart value for every service, key=value (repeatable)")
	fl.StringArrayVar(&v.SetString, "set-string", nil, "like --set, but the value is always a string")
	fl.StringArrayVarP(&v.ValuesFiles, "values", "f", nil, "YAML file of chart values for every service (repeatable)")
	_ = cmd.MarkFlagFilename("values", "yaml", "yml")
}

// overlays are the values as render takes them (see chartOverlays).
func (v ChartValues) overlays(allowUnsafe bool) ([]map[string]any, error) {
	return chartOverlays(v.ValuesFiles, v.Set, v.SetString, allowUnsafe)
}

// chartOverlays reads -f files, then --set and --set-string values, in
// helm's order. Unless allowUnsafe, a variable that the project file may
// not set (see config.UnsafeEnvReason) may not come in this way either.
func chartOverlays(files, sets, setStrings []string, allowUnsafe bool) ([]map[string]any, error) {
	var out []map[string]any
	for _, file := range files {
		vals, err := readValuesFile(file)
		if err != nil {
			return nil, err
		}
		out = append(out, vals)
	}
	if len(sets) > 0 {
		set := map[string]any{}
		for _, s := range sets {
			if err := strvals.ParseInto(s, set); err != nil {
				return nil, &UsageError{Err: fmt.Errorf("--set %s: %v", s, err)}
			}
		}
		out = append(out, set)
	}
	if len(setStrings) > 0 {
		set := map[string]any{}
		for _, s := range setStrings {
			if err := strvals.ParseIntoString(s, set); err != nil {
				return nil, &UsageError{Err: fmt.Errorf("--set-string %s: %v", s, err)}
			}
		}
		out = append(out, set)
	}
	if !allowUnsafe {
		if err := unsafeOverlayEnv(files, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// unsafeOverlayEnv names the first unsafe variable in the overlays' env:
// the -f files' in order, then --set's.
func unsafeOverlayEnv(files []string, overlays []map[string]any) error {
	for i, o := range overlays {
		env, _ := o["env"].(map[string]any)
		for _, k := range slices.Sorted(maps.Keys(env)) {
			if why := config.UnsafeEnvReason(k); why != "" {
				from := "--set"
				if i < len(files) {
					from = files[i]
				}
				return &UsageError{Err: fmt.Errorf("%s: env.%s is unsafe in a deployed service (%s); remove it or pass --allow-unsafe-env", from, k, why)}
			}
		}
	}
	return nil
}

func readValuesFile(path string) (map[string]any, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &UsageError{Err: fmt.Errorf("-f %s: %v", path, unwrapPathError(err))}
	}
	vals := map[string]any{}
	if err := yaml.Unmarshal(data, &vals); err != nil {
		return nil, &UsageError{Err: fmt.Errorf("-f %s: not a YAML mapping of values: %v", path, err)}
	}
	return vals, nil
}
