import type { ExportResult } from '@opentelemetry/core';
import type { ResourceMetrics } from '@opentelemetry/sdk-metrics';

/**
 * One way of delivering OTLP requests of one signal (HTTP or gRPC; `T` is what one request
 * carries: a ResourceMetrics, or a batch of log records). The exporter component owns the queue
 * and the whole-exchange deadline; a transport sends, retries within its rules, and can be made
 * to give up on what is in flight.
 */
export interface OtlpTransport<T = ResourceMetrics> {
  /** Sends one request (retries included); resolves with the outcome, never rejects. */
  export(items: T): Promise<ExportResult>;
  /** Ends every exchange in flight with `err`, destroying its connection (the deadline fired). */
  cancel(err: Error): void;
  /** Ends every exchange and refuses new ones, so no connection outlives the exporter. */
  close(err: Error): void;
  /** Releases what the official exporter holds (after {@link close}). */
  shutdown(): Promise<void>;
}
