{{/* The chart's name. */}}
{{- define "herald.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The objects' name: the release's, with the chart's unless it holds it. */}}
{{- define "herald.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "herald.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "herald.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels that select Herald's pods. */}}
{{- define "herald.selectorLabels" -}}
app.kubernetes.io/name: {{ include "herald.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The ServiceAccount's name. */}}
{{- define "herald.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "herald.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The image reference. */}}
{{- define "herald.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/* Whether the database is PostgreSQL. */}}
{{- define "herald.postgres" -}}
{{- if eq .Values.database.type "postgres" }}true{{ end }}
{{- end }}

{{/* The termination grace, longer than Herald's shutdown grace. */}}
{{- define "herald.terminationGrace" -}}
{{- if .Values.terminationGracePeriodSeconds }}
{{- .Values.terminationGracePeriodSeconds }}
{{- else }}
{{- add .Values.config.shutdownGraceSeconds 30 }}
{{- end }}
{{- end }}

{{/* Refuses values that cannot work, saying why. */}}
{{- define "herald.validate" -}}
{{- $type := .Values.database.type }}
{{- if not (has $type (list "sqlite" "postgres")) }}
{{- fail (printf "database.type must be sqlite or postgres, not %q" $type) }}
{{- end }}
{{- if and (eq $type "sqlite") (gt (int .Values.replicaCount) 1) }}
{{- fail (printf "replicaCount is %d, but with SQLite one Herald process owns the database file (a second one would find it locked): set replicaCount=1, or use PostgreSQL (database.type=postgres with database.existingSecret) for several replicas" (int .Values.replicaCount)) }}
{{- end }}
{{- if lt (int .Values.replicaCount) 1 }}
{{- fail "replicaCount must be at least 1" }}
{{- end }}
{{- if and (eq $type "postgres") (not .Values.database.existingSecret) }}
{{- fail "database.type=postgres needs database.existingSecret: the name of a Secret holding the database URL under database.existingSecretKey (default \"url\")" }}
{{- end }}
{{- if and (eq $type "postgres") (not .Values.encryption.existingSecret) }}
{{- fail "database.type=postgres needs encryption.existingSecret: the name of a Secret holding the encryption keys (\"<id>:<base64 of 32 random bytes>\") under encryption.existingSecretKey (default \"keys\"), the same for every replica" }}
{{- end }}
{{- if not (has .Values.migrations.mode (list "start" "job")) }}
{{- fail (printf "migrations.mode must be start or job, not %q" .Values.migrations.mode) }}
{{- end }}
{{- if and (eq .Values.migrations.mode "job") (eq $type "sqlite") }}
{{- fail "migrations.mode=job needs PostgreSQL: with SQLite the database file is on the pod's volume, and Herald applies migrations when it starts" }}
{{- end }}
{{- if and .Values.terminationGracePeriodSeconds (le (int .Values.terminationGracePeriodSeconds) (int .Values.config.shutdownGraceSeconds)) }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must be longer than config.shutdownGraceSeconds (%d), or Kubernetes kills Herald while it finishes the deliveries in flight" (int .Values.terminationGracePeriodSeconds) (int .Values.config.shutdownGraceSeconds)) }}
{{- end }}
{{- end }}

{{/* The encryption keys' environment variable, if they are in a Secret. */}}
{{- define "herald.keysEnv" -}}
{{- if .Values.encryption.existingSecret }}
- name: HERALD_ENCRYPTION_KEYS
  valueFrom:
    secretKeyRef:
      name: {{ .Values.encryption.existingSecret }}
      key: {{ .Values.encryption.existingSecretKey }}
{{- end }}
{{- end }}

{{/* The database URL's environment variable. */}}
{{- define "herald.dbEnv" -}}
{{- if include "herald.postgres" . }}
- name: HERALD_DB
  valueFrom:
    secretKeyRef:
      name: {{ .Values.database.existingSecret }}
      key: {{ .Values.database.existingSecretKey }}
{{- else }}
- name: HERALD_DB
  value: /var/lib/herald/herald.db
{{- end }}
{{- end }}
