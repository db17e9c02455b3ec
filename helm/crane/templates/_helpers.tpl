{{/*
Names and labels shared by every object of the chart.
*/}}

{{- define "crane.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release-wide prefix of every object name; 63 characters at most. */}}
{{- define "crane.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "crane.operator.fullname" -}}
{{- printf "%s-operator" (include "crane.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "crane.api.fullname" -}}
{{- printf "%s-api" (include "crane.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "crane.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels that never change for the life of an object: used in selectors. */}}
{{- define "crane.selectorLabels" -}}
app.kubernetes.io/name: {{ include "crane.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "crane.labels" -}}
helm.sh/chart: {{ include "crane.chart" . }}
{{ include "crane.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: crane
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Component labels: call with (dict "ctx" $ "component" "operator"). */}}
{{- define "crane.componentSelectorLabels" -}}
{{ include "crane.selectorLabels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "crane.componentLabels" -}}
{{ include "crane.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "crane.operator.serviceAccountName" -}}
{{- if .Values.operator.serviceAccount.create -}}
{{- default (include "crane.operator.fullname" .) .Values.operator.serviceAccount.name -}}
{{- else -}}
{{- required "operator.serviceAccount.name is required when operator.serviceAccount.create is false" .Values.operator.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "crane.api.serviceAccountName" -}}
{{- if .Values.api.serviceAccount.create -}}
{{- default (include "crane.api.fullname" .) .Values.api.serviceAccount.name -}}
{{- else -}}
{{- required "api.serviceAccount.name is required when api.serviceAccount.create is false" .Values.api.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* image reference: repository@digest, or repository:tag (tag defaults to appVersion). */}}
{{- define "crane.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/*
Topology levels as the operator's --topology-key values (ALIAS=KEY, a YAML list), widest first
in Crane's fixed order.
*/}}
{{- define "crane.topologyKeys" -}}
{{- $levels := .Values.topology.levels -}}
{{- $pairs := list -}}
{{- range $alias := list "zone" "block" "rack" "nvlink" "node" -}}
{{- $pairs = append $pairs (printf "%s=%s" $alias (index $levels $alias)) -}}
{{- end -}}
{{- toYaml $pairs -}}
{{- end -}}

{{/* The pod securityContext shared by both Deployments. */}}
{{- define "crane.podSecurityContext" -}}
runAsNonRoot: true
{{- with .Values.podSecurityContext.runAsUser }}
runAsUser: {{ . }}
{{- end }}
{{- with .Values.podSecurityContext.runAsGroup }}
runAsGroup: {{ . }}
{{- end }}
{{- with .Values.podSecurityContext.fsGroup }}
fsGroup: {{ . }}
{{- end }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* The container securityContext: fixed, not a value, so no install can weaken it. */}}
{{- define "crane.containerSecurityContext" -}}
runAsNonRoot: true
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* The Secret and key that hold the API's database URL. */}}
{{- define "crane.api.databaseSecretName" -}}
{{- default (printf "%s-database" (include "crane.api.fullname" .)) .Values.api.database.existingSecret -}}
{{- end -}}

{{- define "crane.api.databaseSecretKey" -}}
{{- if .Values.api.database.existingSecret -}}
{{- .Values.api.database.existingSecretKey -}}
{{- else -}}
url
{{- end -}}
{{- end -}}

{{/* True when the database is SQLite (one replica only, data on the pod's volume). */}}
{{- define "crane.api.sqlite" -}}
{{- if and (not .Values.api.database.existingSecret) (hasPrefix "sqlite" .Values.api.database.url) -}}
true
{{- end -}}
{{- end -}}
