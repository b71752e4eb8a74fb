{{/* The release's name prefix for every object. */}}
{{- define "sagastream.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* A processor's object name: the release prefix and the processor key in kebab case. */}}
{{- define "sagastream.processorName" -}}
{{- printf "%s-%s" (include "sagastream.fullname" .root) (.key | kebabcase) | trunc 52 | trimSuffix "-" -}}
{{- end -}}

{{- define "sagastream.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Selects one processor's pods. */}}
{{- define "sagastream.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .key | kebabcase }}
{{- end -}}

{{- define "sagastream.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/*
The librdkafka properties every client gets: the values' own, then TLS and
SASL, then `.extra`. The password is the container's
$(SAGASTREAM_SASL_PASSWORD), which Kubernetes expands from the Secret; it
never appears in the rendered chart. Called with (dict "root" $ "extra" list).
*/}}
{{- define "sagastream.kafkaProperties" -}}
{{- $props := list -}}
{{- range $k, $v := .root.Values.kafka.properties -}}
{{- $props = append $props (printf "%s=%v" $k $v) -}}
{{- end -}}
{{- $tls := .root.Values.kafka.tls -}}
{{- $sasl := .root.Values.kafka.sasl -}}
{{- if and $tls.enabled $sasl.enabled -}}
{{- $props = append $props "security.protocol=SASL_SSL" -}}
{{- else if $tls.enabled -}}
{{- $props = append $props "security.protocol=SSL" -}}
{{- else if $sasl.enabled -}}
{{- $props = append $props "security.protocol=SASL_PLAINTEXT" -}}
{{- end -}}
{{- if $tls.enabled -}}
{{- $props = append $props "ssl.ca.location=/etc/sagastream/tls/ca.crt" -}}
{{- if $tls.mutual -}}
{{- $props = append $props "ssl.certificate.location=/etc/sagastream/tls/tls.crt" -}}
{{- $props = append $props "ssl.key.location=/etc/sagastream/tls/tls.key" -}}
{{- end -}}
{{- end -}}
{{- if $sasl.enabled -}}
{{- $props = append $props (printf "sasl.mechanism=%s" $sasl.mechanism) -}}
{{- $props = append $props (printf "sasl.username=%s" $sasl.username) -}}
{{- $props = append $props "sasl.password=$(SAGASTREAM_SASL_PASSWORD)" -}}
{{- end -}}
{{- $props = concat $props (default list .extra) -}}
{{- join ";" $props -}}
{{- end -}}

{{/* Env shared by the processors and the topics Job; (dict "root" $ "extra" list). */}}
{{- define "sagastream.kafkaEnv" -}}
{{- with .root -}}
- name: KAFKA_BOOTSTRAP_SERVERS
  value: {{ required "kafka.bootstrapServers is required: host:port of your Kafka brokers" .Values.kafka.bootstrapServers | quote }}
- name: SAGASTREAM_TOPIC_PREFIX
  value: {{ .Values.kafka.topicPrefix | quote }}
{{- if .Values.kafka.sasl.enabled }}
- name: SAGASTREAM_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ required "kafka.sasl.passwordSecret.name is required with SASL" .Values.kafka.sasl.passwordSecret.name }}
      key: {{ .Values.kafka.sasl.passwordSecret.key }}
{{- end }}
{{- end }}
{{- with include "sagastream.kafkaProperties" . }}
- name: SAGASTREAM_KAFKA_PROPERTIES
  value: {{ . | quote }}
{{- end }}
{{- end -}}

{{- define "sagastream.tlsVolume" -}}
{{- if .Values.kafka.tls.enabled -}}
- name: kafka-tls
  secret:
    secretName: {{ required "kafka.tls.secretName is required with TLS" .Values.kafka.tls.secretName }}
{{- end }}
{{- end -}}

{{- define "sagastream.tlsMount" -}}
{{- if .Values.kafka.tls.enabled -}}
- name: kafka-tls
  mountPath: /etc/sagastream/tls
  readOnly: true
{{- end }}
{{- end -}}
