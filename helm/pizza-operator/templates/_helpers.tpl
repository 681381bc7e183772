{{/* Chart name. */}}
{{- define "pizza-operator.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified release name. */}}
{{- define "pizza-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* Recommended labels. */}}
{{- define "pizza-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "pizza-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: pizza-operator
{{- end }}

{{/* Selector labels. */}}
{{- define "pizza-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pizza-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{/* ServiceAccount name. */}}
{{- define "pizza-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "pizza-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Operator image. */}}
{{- define "pizza-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* Light inference image (ONNX Runtime, no torch): router and onnx models. */}}
{{- define "pizza-operator.cpuImage" -}}
{{- default (printf "pizza-serve-cpu:%s" .Chart.AppVersion) .Values.operator.cpuImage }}
{{- end }}

{{/* Torch inference image: models with backends cnn, vlm and image-classifier. */}}
{{- define "pizza-operator.gpuImage" -}}
{{- default (printf "pizza-serve-gpu:%s" .Chart.AppVersion) .Values.operator.gpuImage }}
{{- end }}

{{/* Restricted container security context. */}}
{{- define "pizza-operator.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Restricted pod security context. */}}
{{- define "pizza-operator.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end }}
