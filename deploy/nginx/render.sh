#!/bin/sh
# Render the nginx templates in this folder into OUT_DIR, substituting only the
# variables listed here (nginx's own $variables are left alone). The one place
# where nginx's paths and ports are decided: `make run`, the tests and the
# compose stack all call it. Usage: render.sh OUT_DIR
set -eu
out=${1:?usage: render.sh OUT_DIR}
here=$(cd "$(dirname "$0")" && pwd)

: "${RUN_DIR:=$out}"                             # pid file and temp files
: "${NGINX_LISTEN:=127.0.0.1:8080}"              # the public listener
: "${METRICS_LISTEN:=127.0.0.1:9200}"            # internal listener for Prometheus
: "${UPSTREAM:=unix:$RUN_DIR/gunicorn.sock}"     # gunicorn's bind address
: "${MODEL_DIR:=$here/../../binary}"             # served by nginx for downloads
: "${MAX_BODY_BYTES:=10485760}"                  # same limit as the service's
: "${PROXY_READ_TIMEOUT:=35s}"                   # a little above gunicorn's timeout
: "${MAX_UPLOAD_BYTES:=536870912}"               # admin API: artifact uploads
: "${ADMIN_ALLOW:=all}"                          # admin API: address or CIDR allowed
: "${NGINX_ACCESS_LOG:=$RUN_DIR/nginx-access.log}"
: "${NGINX_ERROR_LOG:=$RUN_DIR/nginx-error.log}"
: "${TLS_CERT_FILE:=}"                            # with TLS_KEY_FILE: a TLS listener too
: "${TLS_KEY_FILE:=}"
: "${TLS_LISTEN:=127.0.0.1:8443}"                # the TLS listener (TLS_PORT in the README)
: "${TLS_REDIRECT:=off}"                         # on: plain HTTP answers 308 to TLS_LISTEN
: "${HSTS_MAX_AGE:=31536000}"                    # Strict-Transport-Security over TLS
: "${MAX_INFLIGHT_PREDICTIONS:=8}"              # predictions in flight (4 per worker; below)
: "${CLIENT_RATE:=2000r/s}"                      # each client's request rate (limits.conf)
: "${CLIENT_BURST:=2000}"                        # ... and the burst above it
: "${REAL_IP_FROM:=}"                            # proxies whose X-Forwarded-For names the client
TLS_PORT=${TLS_LISTEN##*:}
export RUN_DIR NGINX_LISTEN METRICS_LISTEN UPSTREAM MODEL_DIR MAX_BODY_BYTES \
  PROXY_READ_TIMEOUT MAX_UPLOAD_BYTES ADMIN_ALLOW NGINX_ACCESS_LOG NGINX_ERROR_LOG \
  TLS_CERT_FILE TLS_KEY_FILE TLS_LISTEN TLS_PORT TLS_REDIRECT HSTS_MAX_AGE \
  MAX_INFLIGHT_PREDICTIONS CLIENT_RATE CLIENT_BURST

vars='${RUN_DIR} ${NGINX_LISTEN} ${METRICS_LISTEN} ${UPSTREAM} ${MODEL_DIR} ${MAX_BODY_BYTES} ${PROXY_READ_TIMEOUT} ${MAX_UPLOAD_BYTES} ${ADMIN_ALLOW} ${NGINX_ACCESS_LOG} ${NGINX_ERROR_LOG} ${TLS_CERT_FILE} ${TLS_KEY_FILE} ${TLS_LISTEN} ${TLS_PORT} ${TLS_REDIRECT} ${HSTS_MAX_AGE} ${MAX_INFLIGHT_PREDICTIONS} ${CLIENT_RATE} ${CLIENT_BURST}'
mkdir -p "$out" "$RUN_DIR/nginx-temp"
for template in "$here"/*.conf; do
  envsubst "$vars" < "$template" > "$out/$(basename "$template")"
done
# The public server includes tls-listener.conf: the TLS listener when both files are set,
# else nothing (plain HTTP only; a load balancer in front may terminate TLS).
if [ -n "$TLS_CERT_FILE" ] && [ -n "$TLS_KEY_FILE" ]; then
  envsubst "$vars" < "$here/tls-listener.template" > "$out/tls-listener.conf"
elif [ -n "$TLS_CERT_FILE$TLS_KEY_FILE" ]; then
  echo "render.sh: TLS needs both TLS_CERT_FILE and TLS_KEY_FILE" >&2
  exit 2
else
  echo "# TLS off: TLS_CERT_FILE and TLS_KEY_FILE are unset." > "$out/tls-listener.conf"
fi
# The predictions' upstream: the socket listed up to three times (nginx resends a prediction
# only to "the next server"), MAX_INFLIGHT_PREDICTIONS shared out as their max_conns. Past
# it, nginx has no server to try and answers at once (errors.conf: 503 `overloaded`).
# Upstream connections, not requests: a client still uploading holds none, so slow clients
# cannot fill it. The zone shares the counts between nginx's worker processes.
case $MAX_INFLIGHT_PREDICTIONS in
  '' | *[!0-9]* | 0) echo "render.sh: MAX_INFLIGHT_PREDICTIONS must be a whole number >= 1" >&2; exit 2 ;;
esac
left=$MAX_INFLIGHT_PREDICTIONS
entries=3
if [ "$left" -lt 3 ]; then entries=$left; fi
{
  echo "upstream predictions {"
  echo "    zone predictions 64k;"
  while [ "$entries" -gt 0 ]; do
    share=$(( (left + entries - 1) / entries ))
    echo "    server $UPSTREAM max_fails=0 max_conns=$share;"
    left=$(( left - share ))
    entries=$(( entries - 1 ))
  done
  echo "}"
} > "$out/predictions-upstream.conf"
# Behind proxies (REAL_IP_FROM: their addresses or CIDRs), the client is the address they
# put in X-Forwarded-For: per-client limits and the logs then see clients, not the proxy.
: > "$out/realip.conf"
for proxy in $REAL_IP_FROM; do
  echo "set_real_ip_from $proxy;" >> "$out/realip.conf"
done
if [ -n "$REAL_IP_FROM" ]; then
  printf 'real_ip_header X-Forwarded-For;\nreal_ip_recursive on;\n' >> "$out/realip.conf"
fi
