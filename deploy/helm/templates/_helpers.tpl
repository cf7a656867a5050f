{{- define "tsmetrics.fullname" -}}
{{- printf "%s" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "tsmetrics.labels" -}}
app.kubernetes.io/name: tsmetrics
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "tsmetrics.selectorLabels" -}}
app.kubernetes.io/name: tsmetrics
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "tsmetrics.secretName" -}}
{{- if .Values.externalSecret.enabled -}}{{ .Values.externalSecret.secretName }}{{- else -}}{{ include "tsmetrics.fullname" . }}{{- end -}}
{{- end -}}

{{- define "tsmetrics.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}{{ default (include "tsmetrics.fullname" .) .Values.serviceAccount.name }}{{- else -}}{{ default "default" .Values.serviceAccount.name }}{{- end -}}
{{- end -}}
