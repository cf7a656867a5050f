import { ApiCallError } from '../client.ts';
import { ApiDecodeError } from '../decode.ts';
import { b01, count, CounterStarts, isObj, num, parseJson, seconds, str, type Collector, type CollectorContext, type MetricDef } from './common.ts';

export const LOG_STREAM_METRICS = {
  configured: ['tailscale_log_stream_configured', 'Whether logs of this type are streamed to a destination (1) or not (0).', 'status endpoint answers 200 (404: not configured)'],
  lastActivity: ['tailscale_log_stream_last_activity_timestamp', 'Unix time of the stream’s last publish attempt.', 'lastActivity'],
  lastAttemptFailed: ['tailscale_log_stream_last_attempt_failed', 'Whether the stream is failing (1): an error is set and requests failed since the last poll or recently (failure rate above zero).', 'lastError, numFailedRequests, rateFailedRequests'],
  sentBytes: ['tailscale_log_stream_sent_bytes_total', 'Bytes the stream published.', 'numBytesSent'],
  sentEntries: ['tailscale_log_stream_sent_entries_total', 'Log entries the stream published.', 'numEntriesSent'],
  requests: ['tailscale_log_stream_requests_total', 'Requests the stream made to its destination.', 'numTotalRequests'],
  failedRequests: ['tailscale_log_stream_failed_requests_total', 'Requests to the destination that failed.', 'numFailedRequests'],
  spoofedEntries: ['tailscale_log_stream_spoofed_entries_total', 'Network log entries that failed validation (the other side never reported the flow).', 'numSpoofedEntries'],
  maxBodySize: ['tailscale_log_stream_max_body_size_bytes', 'Largest request body the stream sent.', 'maxBodySize'],
} as const satisfies Record<string, MetricDef>;

const LOG_TYPES = ['configuration', 'network'] as const;
/** EWMA rates decay towards zero without reaching it (`4.1e-157`); below this they are zero. */
const RATE_EPSILON = 1e-6;

const COUNTERS = [
  ['sentBytes', 'numBytesSent'],
  ['sentEntries', 'numEntriesSent'],
  ['requests', 'numTotalRequests'],
  ['failedRequests', 'numFailedRequests'],
  ['spoofedEntries', 'numSpoofedEntries'],
] as const;

/**
 * `log_streaming`: `GET …/logging/{configuration,network}/stream/status`. A 404 means either "no
 * stream configured" or "no scope" (Tailscale answers both alike): with an OAuth token known to
 * hold `log_streaming:read` (or an API key, which acts as its user) it is read as "not
 * configured"; with a token known to lack the scope the collector is down. Counters are
 * cumulative sums whose start is the time tsmetrics first saw them (reset when they drop).
 */
export function logStreamingCollector(): Collector {
  const starts = new CounterStarts();
  return {
    async collect(ctx: CollectorContext) {
      const o = ctx.out;
      const answers = await Promise.all(
        LOG_TYPES.map(async (logType) => {
          try {
            return { logType, text: (await ctx.get(`${ctx.client.tailnetPath}/logging/${logType}/stream/status`)).text };
          } catch (err) {
            if (err instanceof ApiCallError && err.status === 404 && ctx.client.hasScope('log_streaming:read') !== false) return { logType, text: undefined };
            throw err;
          }
        }),
      );
      for (const { logType, text } of answers) {
        const labels = { log_type: logType };
        o.gauge(LOG_STREAM_METRICS.configured, labels, b01(text !== undefined));
        if (text === undefined) continue;
        const d = parseJson(text, `${logType} log stream status`);
        if (!isObj(d)) throw new ApiDecodeError(`${logType} log stream status is not an object`);
        o.gauge(LOG_STREAM_METRICS.lastActivity, labels, seconds(d.lastActivity));
        o.gauge(LOG_STREAM_METRICS.maxBodySize, labels, count(d.maxBodySize));
        let failuresGrew = false;
        for (const [metric, field] of COUNTERS) {
          const v = count(d[field]);
          if (v === undefined) continue;
          const key = `${logType}\u0000${field}`;
          const before = starts.previous(key);
          o.counter(LOG_STREAM_METRICS[metric], labels, v, starts.start(key, v, ctx.nowMs));
          if (field === 'numFailedRequests') failuresGrew = before !== undefined && v > before;
        }
        // The error text stays set after the stream recovers, so it alone says little; it is
        // never read beyond "set or not" (it can quote the destination URL).
        const rate = num(d.rateFailedRequests) ?? 0;
        const errorSet = (str(d.lastError) ?? '') !== '';
        o.gauge(LOG_STREAM_METRICS.lastAttemptFailed, labels, b01(errorSet && (failuresGrew || rate > RATE_EPSILON)));
      }
      starts.commit();
    },
  };
}
