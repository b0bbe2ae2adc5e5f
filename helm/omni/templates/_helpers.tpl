{{- define "omni.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "omni.fullname" -}}
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

{{- define "omni.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "omni.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "omni.selector" -}}
app.kubernetes.io/name: {{ include "omni.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "omni.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "omni.slackSecret" -}}
{{- .Values.slack.existingSecret | default (printf "%s-slack" (include "omni.fullname" .)) -}}
{{- end -}}

{{- define "omni.redisSecret" -}}
{{- .Values.redis.existingSecret | default (printf "%s-redis" (include "omni.fullname" .)) -}}
{{- end -}}

{{- define "omni.botServiceAccount" -}}
{{- .Values.bot.serviceAccount.name | default (printf "%s-bot" (include "omni.fullname" .)) -}}
{{- end -}}

{{- define "omni.workerServiceAccount" -}}
{{- .Values.worker.serviceAccount.name | default (printf "%s-worker" (include "omni.fullname" .)) -}}
{{- end -}}

{{/* Environment shared by both Deployments: settings, Redis, Slack. */}}
{{- define "omni.env" -}}
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "omni.redisSecret" . }}
      key: {{ .Values.redis.existingSecretKey }}
- name: SLACK_BOT_TOKEN
  valueFrom:
    secretKeyRef: {name: {{ include "omni.slackSecret" . }}, key: SLACK_BOT_TOKEN}
- name: OMNI_PLAN_KEY
  valueFrom:
    secretKeyRef: {name: {{ include "omni.slackSecret" . }}, key: OMNI_PLAN_KEY, optional: true}
- name: PROMETHEUS_MULTIPROC_DIR
  value: /tmp/metrics
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Pod-level annotations that roll the pods when settings or chart-managed secrets change. */}}
{{- define "omni.checksums" -}}
checksum/config: {{ include (print $.Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- if not .Values.slack.existingSecret }}
checksum/slack: {{ include (print $.Template.BasePath "/secret.yaml") . | sha256sum }}
{{- end }}
{{- end -}}
