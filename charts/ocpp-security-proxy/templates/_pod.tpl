{{/*
The proxy container and its volumes. Public API for operators who keep their own CSMS pod spec
(mode=sidecar, sidecar.renderPod=false), with ctx = (dict "Values" (index .Values "ocpp-security-proxy") "Release" .Release):

  containers:
    {{- include "ocpp-security-proxy.sidecar.container" $ctx | nindent 4 }}
  volumes:
    {{- include "ocpp-security-proxy.sidecar.volumes" $ctx | nindent 4 }}

With sidecar.native=true put the container under initContainers instead (it carries
restartPolicy: Always). Both templates also accept this chart's own root context.
*/}}

{{- define "ocpp-security-proxy.sidecar.container" -}}
{{- $v := .Values -}}
{{- $p := include "ocpp-security-proxy.paths" . | fromYaml -}}
- name: ocpp-security-proxy
  image: {{ include "ocpp-security-proxy.image" . | quote }}
  imagePullPolicy: {{ $v.image.pullPolicy }}
  {{- if and (eq $v.mode "sidecar") $v.sidecar.native }}
  restartPolicy: Always
  {{- end }}
  args: [serve, --config, {{ $p.config }}]
  ports:
    - name: ocpp-tls
      containerPort: {{ int $v.ports.tls }}
      protocol: TCP
    {{- if $v.plain.enabled }}
    - name: ocpp-plain
      containerPort: {{ int $v.ports.plain }}
      protocol: TCP
    {{- end }}
    - name: admin
      containerPort: {{ int $v.ports.admin }}
      protocol: TCP
  {{- if or $v.redis.existingSecret.name $v.extraEnv }}
  env:
    {{- if $v.redis.existingSecret.name }}
    - name: OCPP_PROXY_REDIS
      valueFrom:
        secretKeyRef:
          name: {{ $v.redis.existingSecret.name }}
          key: {{ $v.redis.existingSecret.key }}
    {{- end }}
    {{- with $v.extraEnv }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- end }}
  livenessProbe:
    httpGet:
      path: /healthz
      port: admin
    {{- toYaml $v.livenessProbe | nindent 4 }}
  readinessProbe:
    httpGet:
      path: /readyz
      port: admin
    {{- toYaml $v.readinessProbe | nindent 4 }}
  {{- if gt (int $v.preStopSleepSeconds) 0 }}
  lifecycle:
    preStop:
      {{- if eq $v.preStopMode "exec" }}
      exec:
        command: [/nodejs/bin/node, -e, {{ printf "setTimeout(() => {}, %d)" (mul (int $v.preStopSleepSeconds) 1000) | quote }}]
      {{- else }}
      sleep:
        seconds: {{ int $v.preStopSleepSeconds }}
      {{- end }}
  {{- end }}
  resources:
    {{- toYaml $v.resources | nindent 4 }}
  securityContext:
    {{- toYaml $v.securityContext | nindent 4 }}
  volumeMounts:
    - name: ocpp-proxy-config
      mountPath: {{ $p.config }}
      subPath: config.yaml
      readOnly: true
    {{- range $kind := list "rsa" "ecdsa" }}
    {{- if include "ocpp-security-proxy.tlsSecretName" (list $ $kind) }}
    - name: ocpp-proxy-tls-{{ $kind }}
      mountPath: {{ $p.tls }}/{{ $kind }}
      readOnly: true
    {{- end }}
    {{- end }}
    {{- if or $v.clientCa.secretName $v.clientCa.configMapName }}
    - name: ocpp-proxy-client-ca
      mountPath: {{ $p.clientCa }}
      readOnly: true
    {{- end }}
    {{- if or $v.backendCa.secretName $v.backendCa.configMapName }}
    - name: ocpp-proxy-backend-ca
      mountPath: {{ $p.backendCa }}
      readOnly: true
    {{- end }}
    {{- if $v.signingCa.secretName }}
    - name: ocpp-proxy-signing-ca
      mountPath: {{ $p.signingCa }}
      readOnly: true
    {{- end }}
    - name: ocpp-proxy-server-secret
      mountPath: {{ $p.server }}
      readOnly: true
    - name: ocpp-proxy-admin-token
      mountPath: {{ $p.admin }}
      readOnly: true
    {{- if $v.tlsTicketKeys.enabled }}
    - name: ocpp-proxy-tls-ticket
      mountPath: {{ $p.ticket }}
      readOnly: true
    {{- end }}
    {{- if $v.backendAuth.passwordSecret.name }}
    - name: ocpp-proxy-backend-auth
      mountPath: {{ $p.backend }}
      readOnly: true
    {{- end }}
    - name: ocpp-proxy-data
      mountPath: {{ $p.data }}
    - name: ocpp-proxy-tmp
      mountPath: /tmp
    {{- with $v.extraVolumeMounts }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end -}}

{{- define "ocpp-security-proxy.sidecar.volumes" -}}
{{- $v := .Values -}}
{{- $full := include "ocpp-security-proxy.fullname" . -}}
- name: ocpp-proxy-config
  configMap:
    name: {{ $full }}-config
{{- range $kind := list "rsa" "ecdsa" }}
{{- with include "ocpp-security-proxy.tlsSecretName" (list $ $kind) }}
- name: ocpp-proxy-tls-{{ $kind }}
  secret:
    secretName: {{ . }}
    defaultMode: 0440
    items:
      - {key: tls.crt, path: tls.crt}
      - {key: tls.key, path: tls.key}
{{- end }}
{{- end }}
{{- if $v.clientCa.secretName }}
- name: ocpp-proxy-client-ca
  secret:
    secretName: {{ $v.clientCa.secretName }}
    defaultMode: 0440
{{- else if $v.clientCa.configMapName }}
- name: ocpp-proxy-client-ca
  configMap:
    name: {{ $v.clientCa.configMapName }}
{{- end }}
{{- if $v.backendCa.secretName }}
- name: ocpp-proxy-backend-ca
  secret:
    secretName: {{ $v.backendCa.secretName }}
    defaultMode: 0440
{{- else if $v.backendCa.configMapName }}
- name: ocpp-proxy-backend-ca
  configMap:
    name: {{ $v.backendCa.configMapName }}
{{- end }}
{{- if $v.signingCa.secretName }}
- name: ocpp-proxy-signing-ca
  secret:
    secretName: {{ $v.signingCa.secretName }}
    defaultMode: 0440
{{- end }}
- name: ocpp-proxy-server-secret
  secret:
    secretName: {{ include "ocpp-security-proxy.serverSecretName" . }}
    defaultMode: 0440
- name: ocpp-proxy-admin-token
  secret:
    secretName: {{ include "ocpp-security-proxy.adminTokenSecretName" . }}
    defaultMode: 0440
{{- if $v.tlsTicketKeys.enabled }}
- name: ocpp-proxy-tls-ticket
  secret:
    secretName: {{ include "ocpp-security-proxy.ticketSecretName" . }}
    defaultMode: 0440
{{- end }}
{{- if $v.backendAuth.passwordSecret.name }}
- name: ocpp-proxy-backend-auth
  secret:
    secretName: {{ $v.backendAuth.passwordSecret.name }}
    defaultMode: 0440
{{- end }}
{{- if and (include "ocpp-security-proxy.embeddedStore" .) $v.persistence.enabled }}
- name: ocpp-proxy-data
  persistentVolumeClaim:
    claimName: {{ default (printf "%s-data" $full) $v.persistence.existingClaim }}
{{- else }}
- name: ocpp-proxy-data
  emptyDir: {}
{{- end }}
- name: ocpp-proxy-tmp
  emptyDir:
    medium: Memory
    sizeLimit: 16Mi
{{- with $v.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Checksum of config.yaml: put it in a pod annotation so config changes roll the pods. */}}
{{- define "ocpp-security-proxy.configChecksum" -}}
{{- include "ocpp-security-proxy.config" . | sha256sum -}}
{{- end -}}

{{/* Pod-level settings shared by the chart's Deployment. */}}
{{- define "ocpp-security-proxy.podAnnotations" -}}
{{- $v := .Values -}}
{{- $ann := deepCopy ($v.podAnnotations | default dict) -}}
{{- if and $v.metrics.scrapeAnnotations (not $v.metrics.serviceMonitor.enabled) (not $v.metrics.podMonitor.enabled) -}}
{{- $_ := set $ann "prometheus.io/scrape" "true" -}}
{{- $_ := set $ann "prometheus.io/port" (printf "%d" (int $v.ports.admin)) -}}
{{- $_ := set $ann "prometheus.io/path" "/metrics" -}}
{{- end -}}
{{- $_ := set $ann "checksum/config" (include "ocpp-security-proxy.configChecksum" .) -}}
{{- toYaml $ann -}}
{{- end -}}
