import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { Signal } from '../../src/component/types.ts';
import { ErrorCode, TsmetricsError } from '../../src/errors.ts';
import type { OnceLogger } from '../../src/log/logger.ts';
import type { OtlpTransport } from './transport.ts';

/** What a queue reports as it delivers and drops (the exporter's stats and self-telemetry). */
export interface QueueCounters {
  /** `n` items (points, log records) arrived. */
  sent(n: number): void;
  /** A whole batch arrived. */
  batchSent(): void;
  /** A batch was given up, `n` of its items lost. */
  dropped(n: number): void;
}

export interface SendQueueOptions<T> {
  readonly signal: Signal;
  readonly transport: OtlpTransport<T>;
  /** Deadline of one batch: every request it takes, retries and answers included, ms. */
  readonly timeout: number;
  readonly maxBatches: number;
  /** Items (points, log records) in a batch or a part of one. */
  readonly count: (batch: T) => number;
  /**
   * Joins a batch to the one still waiting at the end of the queue, or returns undefined to keep
   * them apart. A producer that hands on its work in parts (the logs receiver, window by window)
   * then takes one place in the queue while the endpoint is behind, as when it sent it whole.
   */
  readonly merge?: (waiting: T, next: T) => T | undefined;
  /** The batch as the requests it goes out in (one, unless it is over `max_request_bytes`). */
  readonly split: (batch: T) => T[];
  readonly counters: QueueCounters;
  readonly once: OnceLogger;
  /** Fields of the one log line of an outage (endpoint, protocol). */
  readonly logFields: Record<string, string>;
}

/**
 * One signal's bounded queue: batches wait (the oldest dropped beyond `maxBatches`) and go out one
 * at a time, each bounded as a whole by `timeout`: at the limit its connection is destroyed and
 * it fails. A slow or down endpoint therefore never blocks the pipeline or grows memory, and
 * whatever is lost is counted.
 */
export class SendQueue<T> {
  private readonly _o: SendQueueOptions<T>;
  private readonly _queue: T[] = [];
  private _sending: Promise<void> | undefined;
  /** The batch on the wire, and how to give up on it. */
  private _inFlight: { giveUp: (why: string) => void } | undefined;
  /** Set when shutdown gave up on what was left; nothing more is sent. */
  private _abandoned = false;

  constructor(options: SendQueueOptions<T>) {
    this._o = options;
  }

  /** Queues a batch, dropping (and counting) the oldest beyond the bound. */
  push(batch: T): void {
    // The batch in flight has left the queue, so the last one here is always still waiting.
    const last = this.last();
    const joined = last !== undefined && this._o.merge ? this._o.merge(last, batch) : undefined;
    if (joined !== undefined) {
      this._queue[this._queue.length - 1] = joined;
      return;
    }
    this._queue.push(batch);
    while (this._queue.length > this._o.maxBatches) this._drop(this._queue.shift() as T, 'queue full');
  }

  /** The batch waiting at the end of the queue (the one in flight has left it), if any. */
  last(): T | undefined {
    return this._queue.length ? this._queue[this._queue.length - 1] : undefined;
  }

  private _drop(batch: T, why: string, quiet = false, n = this._o.count(batch)): void {
    this._o.counters.dropped(n);
    // Batches given up at shutdown are named once in the shutdown's own line.
    if (!quiet) {
      const what = this._o.signal === 'logs' ? 'OTLP logs export failed; batch dropped' : 'OTLP export failed; batch dropped';
      this._o.once.fail(`export:${this._o.signal}`, why, what, { reason: why, ...this._o.logFields });
    }
  }

  /** Starts sending what is queued, unless a send is under way. */
  kick(): void {
    if (this._sending || this._abandoned) return;
    this._sending = this._drain().finally(() => {
      this._sending = undefined;
    });
  }

  private async _drain(): Promise<void> {
    while (this._queue.length && !this._abandoned) {
      const batch = this._queue.shift() as T;
      const { result: r, delivered } = await this._send(batch);
      if (delivered > 0) this._o.counters.sent(delivered);
      if (r.code === ExportResultCode.SUCCESS) {
        this._o.counters.batchSent();
        this._o.once.ok(`export:${this._o.signal}`, this._o.signal === 'logs' ? 'OTLP logs export recovered' : 'OTLP export recovered', { endpoint: this._o.logFields.endpoint ?? '' });
      } else {
        this._drop(batch, r.error?.message ?? 'failed', this._abandoned, this._o.count(batch) - delivered);
      }
    }
  }

  /**
   * One batch through the transport, bounded as a whole by `timeout`. A batch larger than
   * `max_request_bytes` goes as several requests, one after the other, under the same deadline;
   * the items of those that arrived before a failure count as delivered.
   */
  private _send(batch: T): Promise<{ result: ExportResult; delivered: number }> {
    return new Promise((resolve) => {
      let done = false;
      let delivered = 0;
      const finish = (r: ExportResult): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this._inFlight = undefined;
        resolve({ result: r, delivered });
      };
      const giveUp = (why: string): void => {
        const err = new TsmetricsError(ErrorCode.EXPORT, why);
        this._o.transport.cancel(err);
        finish({ code: ExportResultCode.FAILED, error: err });
      };
      const timer = setTimeout(() => giveUp(`no complete answer within ${this._o.timeout} ms`), this._o.timeout);
      this._inFlight = { giveUp };
      // A batch that cannot be split or encoded fails alone, at once, and is counted: it must
      // not escape as an unhandled rejection, nor leave its deadline to cut off the next batch.
      const broken = (err: unknown): void => finish({ code: ExportResultCode.FAILED, error: new TsmetricsError(ErrorCode.EXPORT, `the batch could not be encoded: ${err instanceof Error ? err.message : String(err)}`) });
      let pieces: T[];
      try {
        pieces = this._o.split(batch);
      } catch (err) {
        broken(err);
        return;
      }
      void (async () => {
        for (const piece of pieces) {
          const r = await this._o.transport.export(piece);
          if (done) return;
          if (r.code !== ExportResultCode.SUCCESS) return finish(r);
          if (pieces.length > 1) delivered += this._o.count(piece);
        }
        delivered = this._o.count(batch);
        finish({ code: ExportResultCode.SUCCESS });
      })().catch(broken);
    });
  }

  /** Sends what is queued and waits for it. */
  async flush(): Promise<void> {
    this.kick();
    while (this._sending) await this._sending;
  }

  /**
   * Gives up on everything (the shutdown deadline passed): what is queued is dropped quietly and
   * the batch in flight is cut off. Returns how many batches were lost.
   */
  abandon(): number {
    this._abandoned = true;
    const left = this._queue.splice(0);
    const n = left.length + (this._inFlight ? 1 : 0);
    for (const b of left) this._drop(b, 'shutdown deadline', true);
    this._inFlight?.giveUp('cut off by the shutdown deadline');
    return n;
  }
}
