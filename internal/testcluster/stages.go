package testcluster

import (
	"bytes"
	"fmt"
	"os"
	"path"

	"sigs.k8s.io/yaml"
)

// FailReadinessLabel marks a pod that kwok must run but never report Ready,
// so tests can watch a rollout that never becomes ready: set it to "true" in
// a pod template's labels.
const FailReadinessLabel = "msctl.dev/fail-readiness"

// kwokNodeAnnotation selects the nodes kwok manages; nodes the harness
// creates carry it, other nodes would be left alone.
const kwokNodeAnnotation = "kwok.x-k8s.io/node"

// failReadinessStage turns a labelled pending pod Running with its
// containers started but not ready. It competes with kwok's pod-ready stage
// for pending pods, so writeKwokConfig excludes labelled pods from that one.
var failReadinessStage = fmt.Sprintf(`apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: msctl-pod-fail-readiness
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: DoesNotExist
    - key: '.status.phase'
      operator: In
      values: ['Pending']
    - key: '.metadata.labels["%[1]s"]'
      operator: In
      values: ['true']
  next:
    statusTemplate: |
      {{ $now := Now }}
      conditions:
      - type: Initialized
        status: "True"
        lastTransitionTime: {{ $now | Quote }}
      - type: ContainersReady
        status: "False"
        reason: ContainersNotReady
        message: "readiness fails on purpose: the pod has the label %[1]s=true"
        lastTransitionTime: {{ $now | Quote }}
      - type: Ready
        status: "False"
        reason: ContainersNotReady
        message: "readiness fails on purpose: the pod has the label %[1]s=true"
        lastTransitionTime: {{ $now | Quote }}
      containerStatuses:
      {{ range .spec.containers }}
      - name: {{ .name | Quote }}
        image: {{ .image | Quote }}
        ready: false
        started: true
        restartCount: 0
        state:
          running:
            startedAt: {{ $now | Quote }}
      {{ end }}
      hostIP: {{ NodeIPWith .spec.nodeName | Quote }}
      podIP: {{ PodIPWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) ( or .metadata.name "" ) ( or .metadata.namespace "" ) | Quote }}
      phase: Running
      startTime: {{ $now | Quote }}
`, FailReadinessLabel)

// writeKwokConfig writes kwok's --config file: the stages from the kwok
// module, with pod-ready narrowed to pods without FailReadinessLabel, plus
// failReadinessStage.
func writeKwokConfig(assets, dest string) error {
	var out bytes.Buffer
	for _, s := range kwokStages {
		data, err := os.ReadFile(stageFile(assets, s))
		if err != nil {
			return fmt.Errorf("kwok stages: %w", err)
		}
		if path.Base(s) == "pod-ready.yaml" {
			if data, err = excludeFailReadiness(data); err != nil {
				return fmt.Errorf("kwok stage pod-ready: %w", err)
			}
		}
		out.WriteString("---\n")
		out.Write(bytes.TrimSpace(data))
		out.WriteString("\n")
	}
	out.WriteString("---\n")
	out.WriteString(failReadinessStage)
	return os.WriteFile(dest, out.Bytes(), 0o644)
}

// excludeFailReadiness adds a selector requirement to a pod stage so that it
// skips pods with FailReadinessLabel=true. NotIn also matches pods without
// the label.
func excludeFailReadiness(stage []byte) ([]byte, error) {
	var obj map[string]any
	if err := yaml.Unmarshal(stage, &obj); err != nil {
		return nil, err
	}
	spec, _ := obj["spec"].(map[string]any)
	selector, _ := spec["selector"].(map[string]any)
	if selector == nil {
		return nil, fmt.Errorf("no spec.selector")
	}
	exprs, _ := selector["matchExpressions"].([]any)
	selector["matchExpressions"] = append(exprs, map[string]any{
		"key":      fmt.Sprintf(`.metadata.labels["%s"]`, FailReadinessLabel),
		"operator": "NotIn",
		"values":   []any{"true"},
	})
	return yaml.Marshal(obj)
}
