{{/* Chart name, truncated to the 63 characters a label value allows. */}}
{{- define "rollguard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-scoped base name of every object. */}}
{{- define "rollguard.fullname" -}}
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

{{- define "rollguard.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "rollguard.labels" -}}
helm.sh/chart: {{ include "rollguard.chart" . }}
app.kubernetes.io/name: {{ include "rollguard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: rollguard
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels of one component: include "rollguard.selectorLabels" (list . "operator") */}}
{{- define "rollguard.selectorLabels" -}}
{{- $ctx := index . 0 -}}
app.kubernetes.io/name: {{ include "rollguard.name" $ctx }}
app.kubernetes.io/instance: {{ $ctx.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{- define "rollguard.componentLabels" -}}
{{ include "rollguard.labels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{- define "rollguard.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}
{{- end }}

{{- define "rollguard.operator.fullname" -}}
{{- printf "%s-operator" (include "rollguard.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "rollguard.api.fullname" -}}
{{- printf "%s-api" (include "rollguard.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "rollguard.operator.serviceAccountName" -}}
{{- if .Values.operator.serviceAccount.create }}
{{- default (include "rollguard.operator.fullname" .) .Values.operator.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.operator.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "rollguard.api.serviceAccountName" -}}
{{- if .Values.api.serviceAccount.create }}
{{- default (include "rollguard.api.fullname" .) .Values.api.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.api.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret holding the database URL. */}}
{{- define "rollguard.databaseSecret" -}}
{{- default (printf "%s-database" (include "rollguard.fullname" .)) .Values.api.database.existingSecret }}
{{- end }}

{{/* With api.enabled and no api.database.url, the API and its migration Job read a Secret the
     user creates: fail at once, naming it, when it (or its key) is missing, rather than leave
     the migration hook waiting for it until Helm's timeout. `lookup` answers only when Helm talks
     to a cluster (install, upgrade, --dry-run=server) and returns nothing under `helm template`
     or --dry-run=client: the check runs only when the lookup of a namespace that every cluster
     has answered. */}}
{{- define "rollguard.validateDatabaseSecret" -}}
{{- $name := include "rollguard.databaseSecret" . }}
{{- $key := .Values.api.database.key }}
{{- $ns := .Release.Namespace }}
{{- if lookup "v1" "Namespace" "" "kube-system" }}
{{- $create := printf "kubectl -n %s create secret generic %s --from-literal=%s='postgresql+psycopg://USER:PASSWORD@HOST:5432/rollguard'" $ns $name $key }}
{{- $secret := lookup "v1" "Secret" $ns $name }}
{{- if not $secret }}
{{- fail (printf "api.enabled=true: the database Secret %q (key %q) does not exist in namespace %q. Create it first (%s), or name an existing one with api.database.existingSecret" $name $key $ns $create) }}
{{- end }}
{{- if not (hasKey ($secret.data | default dict) $key) }}
{{- fail (printf "api.enabled=true: the database Secret %q in namespace %q has no key %q (api.database.key); its keys: %s" $name $ns $key (keys ($secret.data | default dict) | sortAlpha | join ", " | default "none")) }}
{{- end }}
{{- end }}
{{- end }}

{{/* The database URL under both names the failures service reads. */}}
{{- define "rollguard.databaseEnv" -}}
{{- range list "DATABASE_URL" "ROLLGUARD_API_DATABASE_URL" }}
- name: {{ . }}
  valueFrom:
    secretKeyRef:
      name: {{ include "rollguard.databaseSecret" $ }}
      key: {{ $.Values.api.database.key }}
{{- end }}
{{- end }}

{{/* Pod-level settings shared by every pod of the chart. */}}
{{- define "rollguard.podSecurity" -}}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* A writable /tmp: the root filesystem is read-only. */}}
{{- define "rollguard.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- end }}

{{- define "rollguard.tmpMount" -}}
- name: tmp
  mountPath: /tmp
{{- end }}

{{/* Checks that JSON schema cannot express; fail with a message naming the values. */}}
{{- define "rollguard.validate" -}}
{{- if and .Values.operator.enabled .Values.operator.standalone (gt (int .Values.operator.replicas) 1) }}
{{- fail (printf "operator.replicas=%d with operator.standalone=true: standalone replicas do not know each other and would all act on every change; set operator.standalone=false (kopf peering: one replica acts, the others stand by) or operator.replicas=1" (int .Values.operator.replicas)) }}
{{- end }}
{{- if and .Values.api.database.existingSecret .Values.api.database.url }}
{{- fail "api.database: set either existingSecret or url, not both" }}
{{- end }}
{{- if and .Values.api.enabled (not .Values.api.database.url) }}
{{- include "rollguard.validateDatabaseSecret" . }}
{{- end }}
{{- if eq (int .Values.operator.healthPort) (int .Values.operator.metricsPort) }}
{{- fail "operator.healthPort and operator.metricsPort must differ" }}
{{- end }}
{{- end }}

{{/* The labels and annotations the chart puts on its CRDs (templates/crds.yaml). */}}
{{- define "rollguard.crdMetadata" -}}
labels:
  {{- include "rollguard.labels" . | nindent 2 }}
  {{- with .Values.crds.additionalLabels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- if or .Values.crds.keep .Values.crds.annotations }}
annotations:
  {{- if .Values.crds.keep }}
  helm.sh/resource-policy: keep
  {{- end }}
  {{- with .Values.crds.annotations }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}
{{- end }}

{{- define "rollguard.dashboardLabel" -}}
{{- range $k, $v := .Values.grafana.dashboard.labels }}{{ $k }}={{ $v }} {{ end }}
{{- end }}

{{/* The operator's rules on namespaced resources (see operator-rbac.yaml). */}}
{{- define "rollguard.operator.namespacedRules" -}}
- apiGroups: [rollguard.io]
  resources: [failurecatalogs, featureflags, canaryrollouts]
  verbs: [get, list, watch, patch, update]
- apiGroups: [rollguard.io]
  resources: [failurecatalogs/status, featureflags/status, canaryrollouts/status,
              failurecatalogs/finalizers, featureflags/finalizers, canaryrollouts/finalizers]
  verbs: [get, patch, update]
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, list, watch, create, patch, delete]
# The canary edits (and restores) the stable Deployment with a JSON patch that first tests the
# resourceVersion it read, so a concurrent edit fails instead of being overwritten: patch, not update.
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, patch, delete]
# The catalog operator lists ReplicaSets to keep the versions old pods still mount; nothing more.
- apiGroups: [apps]
  resources: [replicasets]
  verbs: [list]
- apiGroups: [""]
  resources: [services]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [networking.k8s.io]
  resources: [ingresses]
  verbs: [get, list, watch, create, patch, delete]
# The Gateway API router reads the user's HTTPRoute and replaces it with the weights set
# (carrying the resourceVersion read); it never creates, lists or watches one.
- apiGroups: [gateway.networking.k8s.io]
  resources: [httproutes]
  verbs: [get, update]
# The canary labels the stable target's pods rollguard.io/track=stable (a metadata patch: the
# pods are not restarted) so one PromQL template selects either track; it finds them by the
# Deployment's selector. The smoke test reads a failed Job's exit code from its pod's status.
# No get, create, delete, pods/exec or pods/log.
- apiGroups: [""]
  resources: [pods]
  verbs: [list, patch]
- apiGroups: [batch]
  resources: [jobs]
  verbs: [get, list, watch, create, delete]
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
- apiGroups: [kopf.dev]
  resources: [kopfpeerings]
  verbs: [get, list, watch, patch]
{{- end }}
