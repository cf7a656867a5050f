# tsmetrics config reloader: POSTs /-/reload when the mounted pipeline file changes.
# The ConfigMap is mounted as a directory (never with subPath): the kubelet then updates the file
# in place by swapping a symlink, and a change of the content's hash is every update there is.
# A failed reload leaves tsmetrics on its running configuration and says why in its own log.
file="${WATCH_FILE:-/etc/tsmetrics/pipeline.yaml}"
url="${RELOAD_URL:-http://127.0.0.1:9100/-/reload}"
every="${RELOAD_INTERVAL:-10}"
digest() { sha256sum "$file" 2>/dev/null | cut -d' ' -f1; }
last="$(digest)"
echo "config-reloader: watching $file every ${every}s"
while sleep "$every"; do
  now="$(digest)"
  if [ -z "$now" ] || [ "$now" = "$last" ]; then continue; fi
  last="$now"
  echo "config-reloader: $file changed; POST $url"
  if [ -n "${METRICS_TOKEN:-}" ]; then
    wget -q -O- -T 30 --post-data= --header="Authorization: Bearer $METRICS_TOKEN" "$url" >/dev/null || echo "config-reloader: reload refused or failed (see the tsmetrics log)"
  else
    wget -q -O- -T 30 --post-data= "$url" >/dev/null || echo "config-reloader: reload refused or failed (see the tsmetrics log)"
  fi
done
