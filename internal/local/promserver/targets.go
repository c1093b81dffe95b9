package promserver

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/discovery/targetgroup"
)

// The scrape pools, one per honor_labels setting.
const (
	poolOwnLabels   = "msctl"
	poolHonorLabels = "msctl_honor_labels"
)

// targetGroups turns targets into the scrape manager's target groups, by
// pool, checking each target.
func targetGroups(ts []Target) (map[string][]*targetgroup.Group, error) {
	groups := map[string][]*targetgroup.Group{poolOwnLabels: nil, poolHonorLabels: nil}
	seen := map[[2]string]bool{}
	for _, t := range ts {
		set, err := labelSet(t)
		if err != nil {
			return nil, fmt.Errorf("metrics target %s %s: %v", t.Job, t.URL, err)
		}
		key := [2]string{string(set[model.JobLabel]), string(set[model.InstanceLabel])}
		if seen[key] {
			return nil, fmt.Errorf("metrics target %s %s: job %q and instance %q are already another target's", t.Job, t.URL, key[0], key[1])
		}
		seen[key] = true
		pool := poolOwnLabels
		if t.HonorLabels {
			pool = poolHonorLabels
		}
		groups[pool] = append(groups[pool], &targetgroup.Group{
			Source:  key[0] + "/" + key[1],
			Targets: []model.LabelSet{set},
		})
	}
	return groups, nil
}

// labelSet is a target's labels as Prometheus's service discovery gives
// them: the address, scheme, path and parameters of its URL as meta labels,
// and the labels its series get.
func labelSet(t Target) (model.LabelSet, error) {
	if t.Job == "" {
		return nil, fmt.Errorf("no job name")
	}
	u, err := url.Parse(t.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.Fragment != "" {
		return nil, fmt.Errorf("want an http(s)://host:port/path URL without user or fragment")
	}
	set := model.LabelSet{
		model.AddressLabel:     model.LabelValue(u.Host),
		model.SchemeLabel:      model.LabelValue(u.Scheme),
		model.MetricsPathLabel: "/metrics",
		model.JobLabel:         model.LabelValue(t.Job),
		model.InstanceLabel:    model.LabelValue(u.Host),
	}
	if u.Path != "" {
		set[model.MetricsPathLabel] = model.LabelValue(u.EscapedPath())
	}
	if t.Instance != "" {
		set[model.InstanceLabel] = model.LabelValue(t.Instance)
	}
	for name, values := range u.Query() {
		set[model.LabelName(model.ParamLabelPrefix+name)] = model.LabelValue(values[0])
	}
	for name, value := range t.Labels {
		switch {
		case !model.LegacyValidation.IsValidLabelName(name):
			return nil, fmt.Errorf("label %q: not a valid label name", name)
		case strings.HasPrefix(name, model.ReservedLabelPrefix), name == model.JobLabel, name == model.InstanceLabel:
			return nil, fmt.Errorf("label %q: reserved, set Job or Instance instead", name)
		}
		set[model.LabelName(name)] = model.LabelValue(value)
	}
	return set, nil
}
