/**
 * Points that mark the end of a series (OpenTelemetry's NO_RECORDED_VALUE flag). The JS data
 * model has no `flags` field, so the staleness processor registers such points here; the OTLP
 * exporter writes `flags: 1` for them and the Prometheus exporter leaves them out.
 */
const stalePoints = new WeakSet<object>();

export function markStale(point: object): void {
  stalePoints.add(point);
}

export function isStale(point: object): boolean {
  return stalePoints.has(point);
}

/** Batches that contain at least one stale point (so others can skip looking). */
const batchesWithStale = new WeakSet<object>();

export function markBatchHasStale(batch: object): void {
  batchesWithStale.add(batch);
}

export function batchHasStale(batch: object): boolean {
  return batchesWithStale.has(batch);
}
