/**
 * Hostile review of `StartTimeTracker.predict`: whatever a device writes (duplicates, reorders,
 * label subsets and supersets, names that sanitize alike or like ours, values cut at
 * label_max_length, lone surrogates, histograms and summaries, failed scrapes in between, a
 * renamed device), the points, start times and attributes objects are the ones the key lookup
 * alone gives. The oracle is a tracker whose prediction never proves anything, so every sample
 * takes the key path; the scrapes are random but seeded (SEED, ITER replay or widen a run).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { convertFamilies, StartTimeTracker } from '../receivers/device_metrics/convert.ts';
import { parseExposition } from '../receivers/device_metrics/exposition.ts';
import { BatchBuilder } from '../src/model/batch.ts';

const stats = { hit: 0, miss: 0, parseErr: 0, scrapes: 0 };
class Counting extends StartTimeTracker {
  override predict(n: string, l: Record<string, string>) {
    const r = super.predict(n, l);
    if (r) stats.hit++; else stats.miss++;
    return r;
  }
}
class KeyOnly extends StartTimeTracker {
  override predict(): undefined {
    return undefined;
  }
}

let seed = Number(process.env.SEED ?? 1);
const rnd = (): number => {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff;
  return seed / 0x7fffffff;
};
const pick = <T,>(a: readonly T[]): T => a[Math.floor(rnd() * a.length)] as T;

const LNAMES = ['a', 'b', 'a-b', 'a_b', 'device_id', 'exported_device_id', 'exported_exported_device_id', 'tailnet', 'device_name', 'exported_tailnet', '__proto__', 'constructor', 'toString', 'hasOwnProperty', '1', '_1', 'z', 'a.b', 'ä', '_', '__', 'valueOf'];
const MAX = 8;
const VALUES = ['x', 'y', '', 'v'.repeat(MAX + 3), 'v'.repeat(MAX) + 'Q', 'v'.repeat(MAX), '\uD800', 'abcdefghijk\uD800lmn', 'abcdefghijk\uFFFDlmn', 'abcdefgh', '😀😀😀😀😀😀😀😀😀', '😀😀😀😀😀😀😀😀', 'x"y', 'x\\ny', '\uFFFD'];

interface Ser { kind: 'counter' | 'gauge' | 'untyped' | 'histogram' | 'summary'; fam: string; labels: Array<[string, string]> }
const FAMS: Array<[Ser['kind'], string]> = [['counter', 'c'], ['counter', 'c2_total'], ['gauge', 'g'], ['gauge', 'g-x'], ['gauge', 'g_x'], ['untyped', 'u'], ['histogram', 'h'], ['summary', 's']];

function randLabels(): Array<[string, string]> {
  const n = Math.floor(rnd() * 4);
  const out: Array<[string, string]> = [];
  for (let i = 0; i < n; i++) {
    const k = pick(LNAMES);
    if (out.some(([x]) => x === k)) continue;
    out.push([k, pick(VALUES)]);
  }
  return out;
}
const esc = (s: string): string => s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
const lab = (ls: Array<[string, string]>, extra = ''): string => {
  const parts = ls.map(([k, v]) => `"${esc(k)}"="${esc(v)}"`);
  if (extra) parts.push(extra);
  return parts.length ? `{${parts.join(',')}}` : '';
};

function render(series: Ser[], counters: Map<Ser, number>): string {
  // group by family, families in first-seen order
  const byFam = new Map<string, Ser[]>();
  for (const s of series) {
    const k = `${s.kind}|${s.fam}`;
    let a = byFam.get(k);
    if (!a) byFam.set(k, (a = []));
    a.push(s);
  }
  let text = '';
  for (const [k, ss] of byFam) {
    const [kind, fam] = k.split('|') as [string, string];
    text += `# TYPE ${JSON.stringify(fam).slice(1, -1) === fam && /^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(fam) ? fam : `"${fam}"`} ${kind}\n`;
    const nm = (suffix: string): string => (/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(fam) ? fam + suffix : `"${fam}${suffix}"`);
    const line = (suffix: string, ls: Array<[string, string]>, extra: string, v: number): string => {
      const n = nm(suffix);
      if (n.startsWith('"')) {
        const inner = lab(ls, extra);
        return `{${n}${inner ? ',' + inner.slice(1, -1) : ''}} ${v}\n`;
      }
      return `${n}${lab(ls, extra)} ${v}\n`;
    };
    for (const s of ss) {
      let v = counters.get(s) ?? 0;
      v = rnd() < 0.15 ? Math.max(0, v - 3) : v + Math.floor(rnd() * 3);
      counters.set(s, v);
      if (kind === 'histogram') {
        text += line('_bucket', s.labels, 'le="1"', v);
        text += line('_bucket', s.labels, 'le="+Inf"', v + 1);
        if (rnd() < 0.8) text += line('_sum', s.labels, '', v * 2);
        if (rnd() < 0.8) text += line('_count', s.labels, '', v + 1);
      } else if (kind === 'summary') {
        text += line('', s.labels, 'quantile="0.5"', v);
        text += line('_sum', s.labels, '', v);
        text += line('_count', s.labels, '', v);
      } else {
        text += line(kind === 'counter' && !fam.endsWith('_total') ? '_total' : '', s.labels, '', v);
      }
    }
  }
  return text;
}

function run(trackerFactory: () => StartTimeTracker, scripts: Array<{ text: string; dev: Record<string, string>; devNew: boolean; ok: 'commit' | 'abandon' }>): string[] {
  const tr = trackerFactory();
  const ids = new Map<object, number>();
  const out: string[] = [];
  let dev: Record<string, string> | undefined;
  for (let i = 0; i < scripts.length; i++) {
    const sc = scripts[i]!;
    if (!dev || sc.devNew) dev = { ...sc.dev };
    let fams;
    try {
      fams = parseExposition(sc.text);
    } catch (e) {
      tr.abandon();
      stats.parseErr++; out.push(`scrape ${i}: parse error ${(e as Error).message}`);
      continue;
    }
    stats.scrapes++;
    const bb = new BatchBuilder({}, { name: 't' });
    convertFamilies(fams, { out: bb, deviceLabels: dev, timeMs: 1000 * (i + 1), tracker: tr, familyAllowed: () => true, maxLabel: MAX });
    if (sc.ok === 'commit') tr.commit();
    else tr.abandon();
    const b = bb.build();
    const lines: string[] = [];
    for (const m of b.scopeMetrics[0]!.metrics) {
      for (const p of m.dataPoints as Array<{ attributes: object; value: unknown; startTime: unknown }>) {
        let id = ids.get(p.attributes);
        if (id === undefined) ids.set(p.attributes, (id = ids.size));
        lines.push(`${m.descriptor.name} #${id} ${JSON.stringify(Object.entries(p.attributes))} proto=${Object.getPrototypeOf(p.attributes) === Object.prototype} v=${JSON.stringify(p.value)} st=${JSON.stringify(p.startTime)}`);
      }
    }
    out.push(`scrape ${i} ${sc.ok} size=${tr.size}\n` + lines.join('\n'));
  }
  return out;
}

test('prediction never changes the outcome (differential fuzz)', () => {
  const iterations = Number(process.env.ITER ?? 300);
  for (let it = 0; it < iterations; it++) {
    const startSeed = seed;
    let pool: Ser[] = [];
    for (let i = 0; i < 6; i++) {
      const [kind, fam] = pick(FAMS);
      pool.push({ kind, fam, labels: randLabels() });
    }
    const counters = new Map<Ser, number>();
    const scripts: Array<{ text: string; dev: Record<string, string>; devNew: boolean; ok: 'commit' | 'abandon' }> = [];
    let devName = 'd1';
    for (let sc = 0; sc < 8; sc++) {
      const r = rnd();
      if (r < 0.15) pool = pool.slice().sort(() => rnd() - 0.5);
      else if (r < 0.3) pool.push({ ...pool[Math.floor(rnd() * pool.length)]! }); // duplicate
      else if (r < 0.45 && pool.length) pool.splice(Math.floor(rnd() * pool.length), 1);
      else if (r < 0.6) {
        const [kind, fam] = pick(FAMS);
        pool.splice(Math.floor(rnd() * (pool.length + 1)), 0, { kind, fam, labels: randLabels() });
      } else if (r < 0.7 && pool.length) {
        const s = pool[Math.floor(rnd() * pool.length)]!;
        // subset / superset / value change of an existing series' labels
        const q = rnd();
        if (q < 0.33 && s.labels.length) s.labels = s.labels.slice(1);
        else if (q < 0.66) s.labels = [...s.labels, [pick(LNAMES), pick(VALUES)] as [string, string]].filter((x, i, a) => a.findIndex((y) => y[0] === x[0]) === i);
        else if (s.labels.length) s.labels = s.labels.map(([k]): [string, string] => [k, pick(VALUES)]);
      } else if (r < 0.75) {
        // reverse label order of a series
        const s = pool[Math.floor(rnd() * pool.length)];
        if (s) s.labels = s.labels.slice().reverse();
      }
      const devNew = rnd() < 0.2;
      if (devNew && rnd() < 0.5) devName = `d${Math.floor(rnd() * 3)}`;
      scripts.push({ text: render(pool, counters), dev: { device_id: 'id1', device_name: devName }, devNew, ok: rnd() < 0.2 ? 'abandon' : 'commit' });
    }
    const a = run(() => new Counting(), scripts);
    const b = run(() => new KeyOnly(), scripts);
    for (let i = 0; i < a.length; i++) {
      if (a[i] !== b[i]) {
        assert.equal(a[i], b[i], `seed ${startSeed} iteration ${it} scrape ${i}\n--- text:\n${scripts[i]!.text}\n--- prev text:\n${scripts[i - 1]?.text}`);
      }
    }
  }
  // The run must exercise both paths, or it proves nothing.
  assert.ok(stats.hit > 1000 && stats.miss > 1000, JSON.stringify(stats));
});
