{{/* Object name: the service, with -canary for the canary's own objects. */}}
{{- define "service.fullname" -}}
{{- if eq .Values.track "canary" -}}
{{- printf "%s-canary" .Values.name -}}
{{- else -}}
{{- .Values.name -}}
{{- end -}}
{{- end -}}

{{/* Labels every object carries. */}}
{{- define "service.labels" -}}
app.kubernetes.io/name: {{ .Values.name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Values.image.tag | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.project }}
app.kubernetes.io/part-of: {{ . }}
{{- end }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app: {{ .Values.name }}
{{- end -}}

{{/* Pod selector of one track: Istio's stable subset and the canary's
Service select on `version`. */}}
{{- define "service.selectorLabels" -}}
app: {{ .Values.name }}
version: {{ .Values.track }}
{{- end -}}

{{- define "service.stable" -}}
{{- if eq .Values.track "stable" -}}true{{- end -}}
{{- end -}}
