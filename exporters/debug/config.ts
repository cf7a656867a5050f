import { defineSchema } from '../../src/config/schema.ts';

export interface DebugExporterConfig {
  verbosity: 'basic' | 'normal' | 'detailed';
  format: 'text' | 'json';
  sampling_initial: number;
  sampling_thereafter: number;
  output: 'stdout' | 'stderr';
}

export const configSchema = defineSchema<DebugExporterConfig>(
  {
    verbosity: { doc: 'basic: one summary line per batch; normal: also one line per metric or log record; detailed: also every resource, data point and attribute.', format: ['basic', 'normal', 'detailed'], default: 'basic' },
    format: { doc: 'text (key=value, escaped) or json (one object per line).', format: ['text', 'json'], default: 'text' },
    sampling_initial: { doc: 'Batches written in full each second before sampling starts.', format: 'nat', default: 2 },
    sampling_thereafter: { doc: 'After sampling_initial in a second, every Mth batch is written (1 = every batch).', format: 'nat', default: 1 },
    output: { doc: 'stdout or stderr.', format: ['stdout', 'stderr'], default: 'stdout' },
  },
  (c) => {
    const problems: Array<{ path: string; message: string }> = [];
    if (c.sampling_thereafter < 1) problems.push({ path: 'sampling_thereafter', message: 'must be at least 1 (1 writes every batch)' });
    return problems;
  },
);
