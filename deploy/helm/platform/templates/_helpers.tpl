{{- define "platform.fullname" -}}
{{- printf "%s" .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{- define "platform.partName" -}}
{{- printf "%s-%s" (include "platform.fullname" .root) .part | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "platform.labels" -}}
app.kubernetes.io/name: platform
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "platform.selector" -}}
app.kubernetes.io/name: platform
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .part }}
{{- end -}}

{{- define "platform.secretName" -}}
{{- default (printf "%s-secrets" (include "platform.fullname" .)) .Values.secret.existingSecret -}}
{{- end -}}

{{/* the in-cluster URL of a part's Service */}}
{{- define "platform.url" -}}
{{- printf "http://%s:%v" (include "platform.partName" (dict "root" .root "part" .part)) (index .root.Values.parts .part).port -}}
{{- end -}}
