/**
 * Hostile review of the flow-log path's speed work: the OTLP logs encoder's KeyValue cache, the
 * flow identity, the hand-read times. Each test names the input that broke (or held).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { ProtobufLogsSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { encodeLogsRequest } from '../exporters/otlp/logs-protobuf.ts';
import { logRecord } from './helpers/logs-source.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function heapAfterGc(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

test('body keys of any length from a hostile device do not stay alive in the encoder after their batches are gone', () => {
  // A device uploads flow entries with extra keys; the body is the entry as sent. 4096 distinct
  // keys of 10 000 characters each (40 MB) used to be kept for good by the KeyValue cache.
  const resource = resourceFromAttributes({ 'service.name': 'tsmetrics' });
  const scope = { name: 'tsmetrics/tailscale_logs' };
  const before = heapAfterGc();
  for (let b = 0; b < 64; b++) {
    const batch: ReadableLogRecord[] = [];
    for (let i = 0; i < 64; i++) {
      const key = `k${b}.${i}.${'x'.repeat(10_000)}`;
      batch.push(logRecord(resource, scope, { body: { proto: 6, [key]: 1 }, attributes: { 'tailscale.node.id': 'n1CNTRL' } }));
    }
    const ours = Buffer.from(encodeLogsRequest(batch));
    if (b === 0) assert.ok(ours.equals(Buffer.from(ProtobufLogsSerializer.serializeRequest(batch) as Uint8Array)), 'the official serializer’s bytes');
  }
  const retained = heapAfterGc() - before;
  assert.ok(retained < 16e6, `${(retained / 1e6).toFixed(1)} MB stay alive after every batch was dropped`);
});

test('a few bytes that are a view of a large buffer (a library caller’s attribute) do not keep that buffer alive after the batch', () => {
  const resource = resourceFromAttributes({ 'service.name': 'tsmetrics' });
  const scope = { name: 'tsmetrics/test' };
  const before = heapAfterGc() + process.memoryUsage().arrayBuffers;
  for (let i = 0; i < 64; i++) {
    const batch = [logRecord(resource, scope, { attributes: { [`bytes.${i}`]: new Uint8Array(1_000_000).subarray(0, 8) } })];
    assert.ok(Buffer.from(encodeLogsRequest(batch)).equals(Buffer.from(ProtobufLogsSerializer.serializeRequest(batch) as Uint8Array)));
  }
  const retained = heapAfterGc() + process.memoryUsage().arrayBuffers - before;
  assert.ok(retained < 16e6, `${(retained / 1e6).toFixed(1)} MB stay alive after every batch was dropped`);
});
