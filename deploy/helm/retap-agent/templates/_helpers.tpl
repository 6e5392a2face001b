{{/* Labels every object carries: the plain manifests' own, plus Helm's bookkeeping. */}}
{{- define "retap-agent.labels" -}}
app.kubernetes.io/part-of: retap
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}
