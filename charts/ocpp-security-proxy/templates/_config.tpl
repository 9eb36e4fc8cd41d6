{{/*
config.yaml for the proxy: the operator's .Values.config (empty values dropped) merged with the
keys this chart manages (listen addresses, mounted file paths, backend, store).
*/}}

{{/* Mount points of everything the proxy reads from disk. */}}
{{- define "ocpp-security-proxy.paths" -}}
config: /etc/ocpp-proxy/config.yaml
tls: /etc/ocpp-proxy/tls
clientCa: /etc/ocpp-proxy/client-ca
backendCa: /etc/ocpp-proxy/backend-ca
signingCa: /etc/ocpp-proxy/signing-ca
server: /etc/ocpp-proxy/secrets/server
admin: /etc/ocpp-proxy/secrets/admin
ticket: /etc/ocpp-proxy/secrets/ticket
backend: /etc/ocpp-proxy/secrets/backend
data: /var/lib/ocpp-proxy
{{- end -}}

{{- define "ocpp-security-proxy.config" -}}
{{- $v := .Values -}}
{{- $p := include "ocpp-security-proxy.paths" . | fromYaml -}}
{{- $cfg := dict -}}
{{- range $key, $val := $v.config -}}
{{- if not (or (kindIs "invalid" $val) (and (kindIs "string" $val) (eq $val "")) (and (kindIs "slice" $val) (empty $val))) -}}
{{- $_ := set $cfg $key $val -}}
{{- end -}}
{{- end -}}
{{- $_ := set $cfg "listen" (printf "0.0.0.0:%d" (int $v.ports.tls)) -}}
{{- if $v.plain.enabled -}}
{{- $_ := set $cfg "plainListen" (printf "0.0.0.0:%d" (int $v.ports.plain)) -}}
{{- end -}}
{{- $_ := set $cfg "adminListen" (printf "0.0.0.0:%d" (int $v.ports.admin)) -}}
{{- $_ := set $cfg "backend" (include "ocpp-security-proxy.backendUrl" .) -}}
{{- $certs := list -}}{{- $keys := list -}}
{{- range $kind := list "rsa" "ecdsa" -}}
{{- if include "ocpp-security-proxy.tlsSecretName" (list $ $kind) -}}
{{- $certs = append $certs (printf "%s/%s/tls.crt" $p.tls $kind) -}}
{{- $keys = append $keys (printf "%s/%s/tls.key" $p.tls $kind) -}}
{{- end -}}
{{- end -}}
{{- $_ := set $cfg "tlsCert" $certs -}}
{{- $_ := set $cfg "tlsKey" $keys -}}
{{- if or $v.clientCa.secretName $v.clientCa.configMapName -}}
{{- $_ := set $cfg "clientCa" (printf "%s/%s" $p.clientCa $v.clientCa.key) -}}
{{- end -}}
{{- if or $v.backendCa.secretName $v.backendCa.configMapName -}}
{{- $_ := set $cfg "backendCa" (printf "%s/%s" $p.backendCa $v.backendCa.key) -}}
{{- end -}}
{{- if $v.signingCa.secretName -}}
{{- $_ := set $cfg "caDir" $p.signingCa -}}
{{- end -}}
{{- $_ := set $cfg "dataDir" $p.data -}}
{{- if $v.redis.url -}}
{{- $_ := set $cfg "redis" $v.redis.url -}}
{{- end -}}
{{- $_ := set $cfg "secretFile" (printf "%s/%s" $p.server $v.serverSecret.key) -}}
{{- $_ := set $cfg "adminTokenFile" (printf "%s/%s" $p.admin $v.adminToken.key) -}}
{{- if $v.tlsTicketKeys.enabled -}}
{{- $_ := set $cfg "tlsTicketKeyFile" (printf "%s/%s" $p.ticket $v.tlsTicketKeys.key) -}}
{{- end -}}
{{- if $v.backendAuth.username -}}
{{- $_ := set $cfg "backendUsername" $v.backendAuth.username -}}
{{- end -}}
{{- if $v.backendAuth.passwordSecret.name -}}
{{- $_ := set $cfg "backendPasswordFile" (printf "%s/%s" $p.backend $v.backendAuth.passwordSecret.key) -}}
{{- end -}}
{{- $_ := set $cfg "devPki" false -}}
{{- toYaml $cfg -}}
{{- end -}}

{{/* Fails the render with a clear message on value combinations the schema cannot express. */}}
{{- define "ocpp-security-proxy.validate" -}}
{{- $v := .Values -}}
{{- $managed := list "listen" "plainListen" "adminListen" "backend" "tlsCert" "tlsKey" "clientCa" "backendCa" "dataDir" "redis" "secretFile" "adminTokenFile" "tlsTicketKeyFile" "backendPasswordFile" "devPki" "caDir" "backendUsername" -}}
{{- range $key := $managed -}}
{{- if hasKey $v.config $key -}}
{{- fail (printf "config.%s is managed by the chart; use the chart's values instead (see README, \"Chart-managed settings\")" $key) -}}
{{- end -}}
{{- end -}}
{{- if and (eq $v.mode "sidecar") $v.sidecar.renderPod (empty $v.sidecar.csms.containers) -}}
{{- fail "mode=sidecar with sidecar.renderPod=true needs sidecar.csms.containers (your CSMS container specs); or set sidecar.renderPod=false and include the \"ocpp-security-proxy.sidecar.container\" template in your own pod spec" -}}
{{- end -}}
{{- if and (eq $v.mode "gateway") (not $v.gateway.csms.url) (not $v.gateway.csms.service) -}}
{{- fail "mode=gateway needs gateway.csms.service (the CSMS's existing Service name) or gateway.csms.url" -}}
{{- end -}}
{{- if not (or (include "ocpp-security-proxy.tlsSecretName" (list . "rsa")) (include "ocpp-security-proxy.tlsSecretName" (list . "ecdsa"))) -}}
{{- fail "no TLS server certificate: set tls.rsa.secretName and/or tls.ecdsa.secretName, or certManager.enabled=true" -}}
{{- end -}}
{{- if and $v.certManager.enabled (or (not $v.certManager.issuerRef.name) (empty $v.certManager.dnsNames)) -}}
{{- fail "certManager.enabled=true needs certManager.issuerRef.name and at least one certManager.dnsNames entry" -}}
{{- end -}}
{{- if and $v.clientCa.secretName $v.clientCa.configMapName -}}
{{- fail "set only one of clientCa.secretName and clientCa.configMapName" -}}
{{- end -}}
{{- if and $v.backendCa.secretName $v.backendCa.configMapName -}}
{{- fail "set only one of backendCa.secretName and backendCa.configMapName" -}}
{{- end -}}
{{- if and (or $v.backendCa.secretName $v.backendCa.configMapName) (not (hasPrefix "wss://" (include "ocpp-security-proxy.backendUrl" .))) -}}
{{- fail "backendCa is set but the CSMS is reached over ws:// (no TLS): give gateway.csms.url a wss:// URL, or drop backendCa" -}}
{{- end -}}
{{- if and $v.redis.url $v.redis.existingSecret.name -}}
{{- fail "set only one of redis.url and redis.existingSecret.name" -}}
{{- end -}}
{{- if include "ocpp-security-proxy.embeddedStore" . -}}
{{- if gt (int $v.replicas) 1 -}}
{{- fail (printf "replicas=%d needs Redis (redis.url or redis.existingSecret.name): the embedded store on a PersistentVolumeClaim serves a single replica" (int $v.replicas)) -}}
{{- end -}}
{{- if $v.autoscaling.enabled -}}
{{- fail "autoscaling.enabled=true needs Redis (redis.url or redis.existingSecret.name): the embedded store serves a single replica" -}}
{{- end -}}
{{- end -}}
{{- if and (eq $v.mode "sidecar") (not $v.sidecar.renderPod) (empty $v.sidecar.externalPodSelector) (or $v.networkPolicy.enabled $v.metrics.podMonitor.enabled) -}}
{{- fail "networkPolicy and metrics.podMonitor need sidecar.externalPodSelector (your CSMS pod labels) when sidecar.renderPod=false" -}}
{{- end -}}
{{- if and $v.metrics.serviceMonitor.enabled $v.metrics.podMonitor.enabled -}}
{{- fail "enable only one of metrics.serviceMonitor and metrics.podMonitor (both would scrape every pod twice)" -}}
{{- end -}}
{{- $withCredentials := "^[a-zA-Z][a-zA-Z0-9+.-]*://[^/]*@" -}}
{{- if regexMatch $withCredentials (default "" $v.redis.url) -}}
{{- fail "redis.url holds credentials, which would be written to a ConfigMap: put the URL in a Secret and set redis.existingSecret.name/key instead" -}}
{{- end -}}
{{- if regexMatch $withCredentials (default "" $v.gateway.csms.url) -}}
{{- fail "gateway.csms.url holds credentials, which would be written to a ConfigMap: use backendAuth.username and backendAuth.passwordSecret instead" -}}
{{- end -}}
{{- $envNames := list -}}
{{- range $e := (default list $v.extraEnv) -}}{{- $envNames = append $envNames (toString (get $e "name")) -}}{{- end -}}
{{- if and $v.backendAuth.username (not $v.backendAuth.passwordSecret.name) (not (has "OCPP_PROXY_BACKEND_PASSWORD" $envNames)) -}}
{{- fail "backendAuth.username needs backendAuth.passwordSecret.name (or an extraEnv OCPP_PROXY_BACKEND_PASSWORD from a Secret): without a password the proxy presents no credentials to the CSMS" -}}
{{- end -}}
{{- if gt (int (default 1 $v.config.workers)) 1 -}}
{{- fail "config.workers > 1 is not supported by the chart (workers 2..n serve metrics and probes on ports it does not expose): scale with replicas (and Redis) instead" -}}
{{- end -}}
{{- $reserved := list "app.kubernetes.io/name" "app.kubernetes.io/instance" "app.kubernetes.io/component" -}}
{{- range $key := $reserved -}}
{{- if hasKey (default dict $v.podLabels) $key -}}
{{- fail (printf "podLabels.%s is set by the chart (the Deployment's selector and Services use it)" $key) -}}
{{- end -}}
{{- end -}}
{{- range $name := $envNames -}}
{{- if has $name (list "OCPP_PROXY_SECRET" "OCPP_PROXY_ADMIN_TOKEN") -}}
{{- fail (printf "extraEnv %s is managed by the chart (serverSecret, adminToken)" $name) -}}
{{- end -}}
{{- range $key := (append $managed "workers") -}}
{{- if eq $name (printf "OCPP_PROXY_%s" (upper (snakecase $key))) -}}
{{- fail (printf "extraEnv %s would override config.%s, which the chart manages (environment variables win over config.yaml); use the chart's values instead" $name $key) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if and (eq $v.mode "sidecar") (not $v.sidecar.renderPod) (or $v.podDisruptionBudget.enabled $v.autoscaling.enabled) -}}
{{- fail "podDisruptionBudget and autoscaling apply to a pod this chart renders: with sidecar.renderPod=false, set them in your own chart" -}}
{{- end -}}
{{- if and $v.podDisruptionBudget.enabled (not $v.autoscaling.enabled) (eq (int $v.replicas) 1) (kindIs "invalid" $v.podDisruptionBudget.maxUnavailable) (not (has (toString $v.podDisruptionBudget.minAvailable) (list "0" "0%"))) -}}
{{- fail "podDisruptionBudget with replicas=1 and minAvailable > 0 would block every node drain: use at least 2 replicas (with Redis), or maxUnavailable: 1" -}}
{{- end -}}
{{- $min := int (include "ocpp-security-proxy.minGracePeriod" .) -}}
{{- if lt (int (include "ocpp-security-proxy.terminationGracePeriodSeconds" .)) $min -}}
{{- fail (printf "terminationGracePeriodSeconds must be at least %d (preStopSleepSeconds + (config.drainGraceMs + config.drainJitterMs)/1000 + 5) so the proxy can drain" $min) -}}
{{- end -}}
{{- end -}}
