{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "inventory-sync.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: the release name if it already contains the chart name, else RELEASE-CHART. */}}
{{- define "inventory-sync.fullname" -}}
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

{{- define "inventory-sync.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "inventory-sync.selectorLabels" -}}
app.kubernetes.io/name: {{ include "inventory-sync.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "inventory-sync.labels" -}}
helm.sh/chart: {{ include "inventory-sync.chart" . }}
{{ include "inventory-sync.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: inventory-sync
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "inventory-sync.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "inventory-sync.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "inventory-sync.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The namespaces whose Role may read Hedgehog objects (namespaced mode only), as JSON. */}}
{{- define "inventory-sync.hedgehogNamespaces" -}}
{{- if include "inventory-sync.hedgehogGranted" . }}
{{- default .Values.watchNamespaces .Values.rbac.hedgehog.namespaces | uniq | toJson }}
{{- else }}
{{- list | toJson }}
{{- end }}
{{- end }}

{{/* The rules granted wherever the operator watches (a ClusterRole, or a Role per namespace). */}}
{{- define "inventory-sync.watchRules" -}}
# Watch our resources (kopf lists and watches them; the scheduler reads them).
- apiGroups: [inventorysync.dev]
  resources: [syncschedules, fabrics]
  verbs: [get, list, watch]
# Write outcomes: the status subresource only, never spec.
- apiGroups: [inventorysync.dev]
  resources: [syncschedules/status, fabrics/status]
  verbs: [get, patch]
{{- end }}

{{- define "inventory-sync.crdRules" -}}
# kopf discovers which of our CRDs exist before it starts watching.
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  verbs: [get, list, watch]
# Before spending a classic Central refresh token the operator asks whether it may patch the
# Secret it must save the rotated token to. Kubernetes grants this to every identity through
# system:basic-user; it is listed for clusters that trimmed that binding.
- apiGroups: [authorization.k8s.io]
  resources: [selfsubjectaccessreviews]
  verbs: [create]
{{- end }}

{{- define "inventory-sync.secretAndEventRules" -}}
# Upstream credentials and fabric kubeconfigs, read by name on each run (no list, no watch).
# With rbac.writeRotatedTokens also patch: classic Central rotates its refresh token on every
# refresh and the new one must be written back (names come from user specs, so no resourceNames).
- apiGroups: [""]
  resources: [secrets]
  verbs: {{ if .Values.rbac.writeRotatedTokens }}[get, patch]{{ else }}[get]{{ end }}
# One Event per run outcome.
- apiGroups: ["", events.k8s.io]
  resources: [events]
  verbs: [create, patch]
{{- end }}

{{/* Non-empty when any Hedgehog group is granted. */}}
{{- define "inventory-sync.hedgehogGranted" -}}
{{- $h := .Values.rbac.hedgehog }}
{{- if or $h.enabled $h.operational $h.fabricator }}true{{ end }}
{{- end }}

{{- define "inventory-sync.hedgehogRules" -}}
{{- $h := .Values.rbac.hedgehog }}
{{- if $h.enabled }}
# A Fabric without a kubeconfig Secret is this cluster: read its Hedgehog resources.
- apiGroups: [wiring.githedgehog.com, vpc.githedgehog.com]
  resources: ["*"]
  verbs: [get, list]
{{- end }}
{{- if $h.operational }}
# Opt-in operational kinds: Agent status and Catalog, DHCPSubnet leases, the gateway kinds.
- apiGroups: [agent.githedgehog.com, dhcp.githedgehog.com, gateway.githedgehog.com, gwint.githedgehog.com]
  resources: ["*"]
  verbs: [get, list]
{{- end }}
{{- if $h.fabricator }}
# Opt-in installer kinds (Fabricator, ControlNode, FabNode; namespace fab); credentials in
# their specs are redacted before anything is stored.
- apiGroups: [fabricator.githedgehog.com]
  resources: ["*"]
  verbs: [get, list]
{{- end }}
{{- end }}
