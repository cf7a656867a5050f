/**
 * Points that mark the end of a series (OpenTelemetry's NO_RECORDED_VALUE data-point flag).
 *
 * The JS data model has no `flags` field, so the marker travels in-band as an own `flags`
 * property on the point itself: any processor that copies points (`{ ...p }`) carries it along,
 * which a side table keyed by object identity could not survive. The OTLP exporter writes the
 * flag; the Prometheus exporter leaves such points out.
 */

import type { HrTime } from '@opentelemetry/api';
import type { DataPoint } from '@opentelemetry/sdk-metrics';

/** OTLP `DataPointFlags.NO_RECORDED_VALUE_MASK`. */
export const NO_RECORDED_VALUE = 1;

/** A data point that may carry OTLP data-point flags in-band. */
export interface FlaggedPoint {
  flags?: number;
}

/** A copy of `p` with `startTime` and `value`, carrying its flags (an end-of-series marker stays one). */
export function copyPoint<T>(p: DataPoint<T>, startTime: HrTime, value: T): DataPoint<T> {
  const out: DataPoint<T> = { attributes: p.attributes, startTime, endTime: p.endTime, value };
  const flags = (p as FlaggedPoint).flags;
  if (flags !== undefined) (out as FlaggedPoint).flags = flags;
  return out;
}

export function markStale(point: object): void {
  const p = point as FlaggedPoint;
  p.flags = (p.flags ?? 0) | NO_RECORDED_VALUE;
}

export function isStale(point: object): boolean {
  const f = (point as FlaggedPoint).flags;
  return f !== undefined && (f & NO_RECORDED_VALUE) !== 0;
}

/**
 * Kept for library callers of the first release; a no-op now that markers are found by looking
 * at the points (a batch-level mark did not survive processors that copy batches).
 */
export function markBatchHasStale(_batch: object): void {}

/** True when any point of the batch is an end-of-series marker. */
export function batchHasStale(batch: { scopeMetrics: ReadonlyArray<{ metrics: ReadonlyArray<{ dataPoints: readonly object[] }> }> }): boolean {
  // Indexed loops: this runs once per batch, too rarely for the optimizer to remove the
  // iterator objects a for-of over a million points allocates.
  for (const sm of batch.scopeMetrics) {
    for (const m of sm.metrics) {
      const points = m.dataPoints;
      for (let i = 0; i < points.length; i++) if ((points[i] as FlaggedPoint).flags !== undefined && isStale(points[i] as object)) return true;
    }
  }
  return false;
}
