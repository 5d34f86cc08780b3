{{/* vim: set filetype=mustache: */}}
{{/*
Expand the name of the chart.
*/}}
{{- define "evcharging.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Create a default fully qualified app name.
We truncate at 63 chars because some Kubernetes name fields are limited to this (by the DNS naming spec).
If release name contains chart name it will be used as a full name.
*/}}
{{- define "evcharging.fullname" -}}
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

{{/*
Create chart name and version as used by the chart label.
*/}}
{{- define "evcharging.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels. Context: (dict "root" $ "component" "central").
*/}}
{{- define "evcharging.labels" -}}
helm.sh/chart: {{ include "evcharging.chart" .root }}
{{ include "evcharging.selectorLabels" . }}
{{- with .root.Chart.AppVersion }}
app.kubernetes.io/version: {{ . | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: {{ include "evcharging.name" .root }}
{{- end }}

{{/*
Selector labels: name, instance and component only, so they never change on upgrade.
Context: (dict "root" $ "component" "central").
*/}}
{{- define "evcharging.selectorLabels" -}}
app.kubernetes.io/name: {{ include "evcharging.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
Name of an object of one component: <fullname>-<component>.
*/}}
{{- define "evcharging.componentName" -}}
{{- printf "%s-%s" (include "evcharging.fullname" .root) .component | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The ServiceAccount of every pod.
*/}}
{{- define "evcharging.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "evcharging.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Image reference: <registry>/<repository>@<digest> when the image has a digest, else
<registry>/<repository>:<tag>, the tag from the image, else global.image.tag, else
the chart's appVersion. Context: (dict "root" $ "image" .Values.central.image).
*/}}
{{- define "evcharging.image" -}}
{{- $g := .root.Values.global.image }}
{{- $registry := .image.registry | default $g.registry }}
{{- if .image.digest }}
{{- printf "%s/%s@%s" $registry .image.repository .image.digest }}
{{- else }}
{{- printf "%s/%s:%s" $registry .image.repository (.image.tag | default $g.tag | default .root.Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/*
Fail early, naming what to install, when a prerequisite API is missing: the Strimzi
operator's (kafka.strimzi.io/v1) whenever the chart renders its Kafka. Rendering
offline (`helm template`, no cluster to ask) passes `--api-versions
kafka.strimzi.io/v1` or sets kafka.strimziApiCheck=false.
*/}}
{{- define "evcharging.checkPrerequisites" -}}
{{- if and (include "evcharging.strimzi" .) .Values.kafka.strimziApiCheck (not (.Capabilities.APIVersions.Has "kafka.strimzi.io/v1")) }}
{{- fail (printf "\n\nevcharging: the Strimzi API (kafka.strimzi.io/v1) is missing from this cluster. This chart runs Kafka with the Strimzi operator (%s): install it first, e.g.\n  helm install strimzi oci://quay.io/strimzi-helm/strimzi-kafka-operator --version %s --namespace strimzi --create-namespace --set watchAnyNamespace=true\n(`make kind-up` and `make minikube-up` do this), or use a Kafka of your own with --set kafka.external.bootstrap=HOST:PORT.\nRendering without a cluster (helm template)? Add --api-versions kafka.strimzi.io/v1, or --set kafka.strimziApiCheck=false." (index .Chart.Annotations "evcharging/strimzi-version") (index .Chart.Annotations "evcharging/strimzi-version")) }}
{{- end }}
{{- end }}

{{/*
Pod-level settings every workload shares.
*/}}
{{- define "evcharging.podCommon" -}}
serviceAccountName: {{ include "evcharging.serviceAccountName" . }}
automountServiceAccountToken: false
terminationGracePeriodSeconds: {{ .Values.terminationGracePeriodSeconds }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.global.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
Secret of the monitor port's certificate (tls.crt, tls.key, ca.crt): the one named in
central.tls.secretName, or the one the chart (or cert-manager) makes.
*/}}
{{- define "evcharging.centralTlsSecretName" -}}
{{- if .Values.central.tls.secretName }}
{{- .Values.central.tls.secretName }}
{{- else }}
{{- printf "%s-tls" (include "evcharging.componentName" (dict "root" . "component" "central")) }}
{{- end }}
{{- end }}

{{/*
DNS names of the central's Service: what the monitor port's certificate names.
*/}}
{{- define "evcharging.centralDnsNames" -}}
{{- $svc := include "evcharging.componentName" (dict "root" . "component" "central") -}}
{{- $ns := .Release.Namespace -}}
{{- list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.cluster.local" $svc $ns) | toJson }}
{{- end }}

{{/*
Name of the Secret with the operator and registration tokens.
*/}}
{{- define "evcharging.tokensSecretName" -}}
{{- if .Values.central.auth.existingSecret }}
{{- .Values.central.auth.existingSecret }}
{{- else }}
{{- printf "%s-tokens" (include "evcharging.componentName" (dict "root" . "component" "central")) }}
{{- end }}
{{- end }}

{{/*
Address of the central's monitor port, as the monitors reach it.
*/}}
{{- define "evcharging.centralAddress" -}}
{{- printf "%s:%d" (include "evcharging.componentName" (dict "root" . "component" "central")) (int .Values.central.service.monitorPort) }}
{{- end }}

{{/*
True (non-empty) when the chart renders a Strimzi Kafka cluster.
*/}}
{{- define "evcharging.strimzi" -}}
{{- if not .Values.kafka.external.bootstrap }}true{{ end }}
{{- end }}

{{/*
Name of the Strimzi Kafka cluster.
*/}}
{{- define "evcharging.kafkaClusterName" -}}
{{- default (include "evcharging.fullname" .) .Values.kafka.clusterName | trunc 40 | trimSuffix "-" }}
{{- end }}

{{/*
Kafka bootstrap HOST:PORT every component connects to.
*/}}
{{- define "evcharging.kafkaBootstrap" -}}
{{- if include "evcharging.strimzi" . }}
{{- printf "%s-kafka-bootstrap:%d" (include "evcharging.kafkaClusterName" .) (ternary 9093 9092 .Values.kafka.tls.enabled) }}
{{- else }}
{{- .Values.kafka.external.bootstrap }}
{{- end }}
{{- end }}

{{/*
Kafka security protocol of the clients: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.
*/}}
{{- define "evcharging.kafkaSecurityProtocol" -}}
{{- if include "evcharging.strimzi" . }}
{{- printf "%s%s" (ternary "SASL_" "" .Values.kafka.auth.enabled) (ternary "SSL" "PLAINTEXT" .Values.kafka.tls.enabled) }}
{{- else }}
{{- .Values.kafka.external.securityProtocol }}
{{- end }}
{{- end }}

{{/*
Secret holding a component's Kafka password (key "password"), or empty.
Strimzi's User Operator names it after the KafkaUser.
Context: (dict "root" $ "component" "central").
*/}}
{{- define "evcharging.kafkaPasswordSecret" -}}
{{- if hasPrefix "SASL" (include "evcharging.kafkaSecurityProtocol" .root) }}
{{- if include "evcharging.strimzi" .root }}
{{- include "evcharging.kafkaUserName" . }}
{{- else }}
{{- required "kafka.external.existingSecret is required with a SASL protocol" .root.Values.kafka.external.existingSecret }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Secret holding the brokers' CA (key "ca.crt"), or empty.
*/}}
{{- define "evcharging.kafkaCaSecret" -}}
{{- if include "evcharging.strimzi" . }}
{{- if .Values.kafka.tls.enabled }}
{{- printf "%s-cluster-ca-cert" (include "evcharging.kafkaClusterName" .) }}
{{- end }}
{{- else }}
{{- .Values.kafka.external.caSecret }}
{{- end }}
{{- end }}

{{/*
KafkaUser (and SCRAM user name) of a component. Context: (dict "root" $ "component" "central").
*/}}
{{- define "evcharging.kafkaUserName" -}}
{{- include "evcharging.componentName" . }}
{{- end }}

{{/*
Environment of a Kafka client container. Context: (dict "root" $ "component" "central").
*/}}
{{- define "evcharging.kafkaEnv" -}}
{{- $protocol := include "evcharging.kafkaSecurityProtocol" .root -}}
- name: EV_KAFKA
  value: {{ include "evcharging.kafkaBootstrap" .root | quote }}
- name: EV_KAFKA_SECURITY_PROTOCOL
  value: {{ $protocol | quote }}
{{- if hasPrefix "SASL" $protocol }}
{{- if include "evcharging.strimzi" .root }}
- name: EV_KAFKA_SASL_MECHANISM
  value: SCRAM-SHA-512
- name: EV_KAFKA_USERNAME
  value: {{ include "evcharging.kafkaUserName" . | quote }}
{{- else }}
- name: EV_KAFKA_SASL_MECHANISM
  value: {{ .root.Values.kafka.external.saslMechanism | quote }}
- name: EV_KAFKA_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ include "evcharging.kafkaPasswordSecret" . }}
      key: username
{{- end }}
- name: EV_KAFKA_PASSWORD_FILE
  value: /etc/evcharging/kafka/password
{{- end }}
{{- if include "evcharging.kafkaCaSecret" .root }}
- name: EV_KAFKA_CA_FILE
  value: /etc/evcharging/kafka-ca/ca.crt
{{- end }}
{{- end }}

{{/*
Volume mounts of a Kafka client container (credentials, CA). Context as kafkaEnv.
*/}}
{{- define "evcharging.kafkaVolumeMounts" -}}
{{- if include "evcharging.kafkaPasswordSecret" . }}
- name: kafka-password
  mountPath: /etc/evcharging/kafka
  readOnly: true
{{- end }}
{{- if include "evcharging.kafkaCaSecret" .root }}
- name: kafka-ca
  mountPath: /etc/evcharging/kafka-ca
  readOnly: true
{{- end }}
{{- end }}

{{/*
Volumes of a Kafka client pod (credentials, CA). Context as kafkaEnv.
*/}}
{{- define "evcharging.kafkaVolumes" -}}
{{- with include "evcharging.kafkaPasswordSecret" . }}
- name: kafka-password
  secret:
    secretName: {{ . }}
    items:
      - key: password
        path: password
{{- end }}
{{- with include "evcharging.kafkaCaSecret" .root }}
- name: kafka-ca
  secret:
    secretName: {{ . }}
    items:
      - key: ca.crt
        path: ca.crt
{{- end }}
{{- end }}

{{/*
Environment every container shares.
*/}}
{{- define "evcharging.commonEnv" -}}
- name: EV_LOG_LEVEL
  value: {{ .Values.global.logLevel | quote }}
{{- end }}

{{/*
An httpGet probe on a named port. Context: (dict "port" "http" "path" "/healthz").
*/}}
{{- define "evcharging.httpProbe" -}}
httpGet:
  path: {{ .path }}
  port: {{ .port }}
periodSeconds: {{ default 10 .period }}
timeoutSeconds: 3
failureThreshold: {{ default 3 .failures }}
{{- end }}

{{/*
A volumeClaimTemplate. Context: (dict "name" "data" "storageClass" "" "size" "1Gi").
*/}}
{{- define "evcharging.volumeClaimTemplate" -}}
- metadata:
    name: {{ .name }}
  spec:
    accessModes:
      - ReadWriteOnce
    {{- with .storageClass }}
    storageClassName: {{ . }}
    {{- end }}
    resources:
      requests:
        storage: {{ .size }}
{{- end }}

{{/*
The CP id from the pod ordinal: POD_INDEX first, since EV_CP_ID refers to it.
*/}}
{{- define "evcharging.cpIdEnv" -}}
- name: POD_INDEX
  valueFrom:
    fieldRef:
      fieldPath: metadata.labels['apps.kubernetes.io/pod-index']
- name: EV_CP_ID
  value: CP-$(POD_INDEX)
{{- end }}

{{/*
Ports the Kafka clients connect to, as a JSON list: the Strimzi listener's, or those
of kafka.external.bootstrap.
*/}}
{{- define "evcharging.kafkaPorts" -}}
{{- if include "evcharging.strimzi" . }}
{{- list (ternary 9093 9092 .Values.kafka.tls.enabled) | toJson }}
{{- else }}
{{- $ports := list }}
{{- range splitList "," .Values.kafka.external.bootstrap }}
{{- $ports = append $ports (int (last (splitList ":" (trim .)))) }}
{{- end }}
{{- $ports | uniq | toJson }}
{{- end }}
{{- end }}

{{/*
The NetworkPolicy peer that stands for Prometheus (networkPolicy.prometheus).
*/}}
{{- define "evcharging.prometheusPeer" -}}
- namespaceSelector:
    {{- toYaml .Values.networkPolicy.prometheus.namespaceSelector | nindent 4 }}
  podSelector:
    {{- toYaml .Values.networkPolicy.prometheus.podSelector | nindent 4 }}
{{- end }}

{{/*
Pods of this release that are Kafka clients (the Kafka listener admits only them).
*/}}
{{- define "evcharging.kafkaClientPeer" -}}
- podSelector:
    matchExpressions:
      - key: app.kubernetes.io/instance
        operator: In
        values: [{{ .Release.Name | quote }}]
      - key: app.kubernetes.io/component
        operator: In
        values: [central, cp, driver, test, ocpp]
{{- end }}

{{/*
A driver's self-enrollment (drivers.selfEnrollment): its environment, mount and
volume, shared by the driver pods and the `helm test` pod. Each renders nothing
when self-enrollment is off.
*/}}
{{- define "evcharging.driverEnrollmentEnv" -}}
{{- if .Values.drivers.selfEnrollment }}
# enrolls the driver on first use (issue 14): the credential then lives in its state dir
- name: EV_ENROLLMENT_TOKEN_FILE
  value: /etc/evcharging/enrollment/enrollment-token
{{- end }}
{{- end }}

{{- define "evcharging.driverEnrollmentMount" -}}
{{- if .Values.drivers.selfEnrollment }}
- name: enrollment
  mountPath: /etc/evcharging/enrollment
  readOnly: true
{{- end }}
{{- end }}

{{- define "evcharging.driverEnrollmentVolume" -}}
{{- if .Values.drivers.selfEnrollment }}
- name: enrollment
  secret:
    secretName: {{ include "evcharging.tokensSecretName" . }}
    items:
      - key: enrollment-token
        path: enrollment-token
{{- end }}
{{- end }}
