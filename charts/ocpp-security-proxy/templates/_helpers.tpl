{{/*
Naming and labels. These helpers read only .Values and .Release so that an operator's chart can
call the sidecar templates with (dict "Values" <our values> "Release" .Release).
*/}}

{{/* Short name: "ocpp-security-proxy" unless nameOverride is set. */}}
{{- define "ocpp-security-proxy.name" -}}
{{- default "ocpp-security-proxy" .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Resource name prefix: <release>-<name>, or fullnameOverride. */}}
{{- define "ocpp-security-proxy.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "ocpp-security-proxy.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Labels that select this release's proxy pods. */}}
{{- define "ocpp-security-proxy.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ocpp-security-proxy.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels on every object this chart renders itself (needs .Chart). */}}
{{- define "ocpp-security-proxy.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "ocpp-security-proxy.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ocpp-security-proxy
{{- end -}}

{{/* Labels of the pods whose Services this chart renders (chart pod, or the operator's pod). */}}
{{- define "ocpp-security-proxy.podSelector" -}}
{{- if and (eq .Values.mode "sidecar") (not .Values.sidecar.renderPod) -}}
{{- toYaml .Values.sidecar.externalPodSelector -}}
{{- else -}}
{{- include "ocpp-security-proxy.selectorLabels" . -}}
{{- end -}}
{{- end -}}

{{/* True ("true") when this chart renders a Deployment itself. */}}
{{- define "ocpp-security-proxy.rendersPod" -}}
{{- if or (eq .Values.mode "gateway") .Values.sidecar.renderPod -}}true{{- end -}}
{{- end -}}

{{- define "ocpp-security-proxy.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "ocpp-security-proxy.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "ocpp-security-proxy.image" -}}
{{- $tag := default "0.1.0" .Values.image.tag -}}
{{- if and (not .Values.image.tag) .Chart -}}{{- $tag = .Chart.AppVersion -}}{{- end -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* "true" when the credential store is the embedded file store (no Redis configured). */}}
{{- define "ocpp-security-proxy.embeddedStore" -}}
{{- if not (or .Values.redis.url .Values.redis.existingSecret.name) -}}true{{- end -}}
{{- end -}}

{{/* Secret names: existing ones, or the ones this chart generates. */}}
{{- define "ocpp-security-proxy.serverSecretName" -}}
{{- default (printf "%s-server-secret" (include "ocpp-security-proxy.fullname" .)) .Values.serverSecret.existingSecret -}}
{{- end -}}
{{- define "ocpp-security-proxy.adminTokenSecretName" -}}
{{- default (printf "%s-admin-token" (include "ocpp-security-proxy.fullname" .)) .Values.adminToken.existingSecret -}}
{{- end -}}
{{- define "ocpp-security-proxy.ticketSecretName" -}}
{{- default (printf "%s-tls-ticket" (include "ocpp-security-proxy.fullname" .)) .Values.tlsTicketKeys.existingSecret -}}
{{- end -}}
{{- define "ocpp-security-proxy.tlsSecretName" -}}
{{- $ctx := index . 0 -}}{{- $kind := index . 1 -}}
{{- $explicit := (index $ctx.Values.tls $kind).secretName -}}
{{- if $explicit -}}{{- $explicit -}}
{{- else if $ctx.Values.certManager.enabled -}}{{- printf "%s-tls-%s" (include "ocpp-security-proxy.fullname" $ctx) $kind -}}
{{- end -}}
{{- end -}}

{{/* The CSMS WebSocket URL the proxy dials (identity is appended by the proxy). */}}
{{- define "ocpp-security-proxy.backendUrl" -}}
{{- if eq .Values.mode "sidecar" -}}
{{- printf "ws://127.0.0.1:%d%s" (int .Values.sidecar.csms.port) .Values.sidecar.csms.path -}}
{{- else if .Values.gateway.csms.url -}}
{{- .Values.gateway.csms.url -}}
{{- else -}}
{{- $ns := default .Release.Namespace .Values.gateway.csms.namespace -}}
{{- printf "ws://%s.%s.svc.%s:%d%s" .Values.gateway.csms.service $ns .Values.clusterDomain (int .Values.gateway.csms.port) .Values.gateway.csms.path -}}
{{- end -}}
{{- end -}}

{{/* Seconds from the pod's deletion until the proxy has drained: preStop sleep + the drain. */}}
{{- define "ocpp-security-proxy.drainSeconds" -}}
{{- $grace := int (default 10000 .Values.config.drainGraceMs) -}}
{{- $jitter := int (default 5000 .Values.config.drainJitterMs) -}}
{{- add (int .Values.preStopSleepSeconds) (div (add $grace $jitter 999) 1000) -}}
{{- end -}}

{{/* Seconds Kubernetes waits after preStop: preStop sleep + proxy drain + 5 s margin. */}}
{{- define "ocpp-security-proxy.minGracePeriod" -}}
{{- add (int (include "ocpp-security-proxy.drainSeconds" .)) 5 -}}
{{- end -}}

{{/* A new pod stays ready this long before the next old pod goes: one old pod drains at a time. */}}
{{- define "ocpp-security-proxy.minReadySeconds" -}}
{{- if kindIs "invalid" .Values.minReadySeconds -}}{{- include "ocpp-security-proxy.drainSeconds" . -}}
{{- else -}}{{- int .Values.minReadySeconds -}}
{{- end -}}
{{- end -}}

{{/* Default: the minimum; with the CSMS held during the drain, 30 s more for its own shutdown after that. */}}
{{- define "ocpp-security-proxy.terminationGracePeriodSeconds" -}}
{{- $min := int (include "ocpp-security-proxy.minGracePeriod" .) -}}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds -}}
{{- if include "ocpp-security-proxy.holdsCsms" . -}}{{- add (int (include "ocpp-security-proxy.drainSeconds" .)) 30 -}}{{- else -}}{{- $min -}}{{- end -}}
{{- else -}}{{- int .Values.terminationGracePeriodSeconds -}}
{{- end -}}
{{- end -}}

{{/* Non-empty when the chart gives the CSMS's containers a preStop hold (sidecar.csms.holdDuringDrain). */}}
{{- define "ocpp-security-proxy.holdsCsms" -}}
{{- $v := .Values -}}
{{- if and (eq $v.mode "sidecar") $v.sidecar.renderPod $v.sidecar.csms.holdDuringDrain (not $v.sidecar.native) (eq $v.preStopMode "sleep") -}}true{{- end -}}
{{- end -}}

{{/*
The CSMS's containers in sidecar mode. With holdDuringDrain (and not native), one without a preStop
hook gets a sleep as long as the proxy's drain: Kubernetes signals every container at once, and a
CSMS gone at once would cut every charger the proxy is draining a few at a time.
*/}}
{{- define "ocpp-security-proxy.csmsContainers" -}}
{{- $v := .Values -}}
{{- $hold := include "ocpp-security-proxy.holdsCsms" . -}}
{{- $out := list -}}
{{- range $c := $v.sidecar.csms.containers -}}
{{- $c = deepCopy $c -}}
{{- if and $hold (not (dig "lifecycle" "preStop" "" $c)) -}}
{{- $lifecycle := deepCopy (default (dict) (get $c "lifecycle")) -}}
{{- $_ := set $lifecycle "preStop" (dict "sleep" (dict "seconds" (int (include "ocpp-security-proxy.drainSeconds" $)))) -}}
{{- $_ := set $c "lifecycle" $lifecycle -}}
{{- end -}}
{{- $out = append $out $c -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}
