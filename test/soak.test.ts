import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { tempDir } from './helpers/system.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

test('short soak (400 cycles, 20 % churn, faults on and off): heap, live series and sockets stay flat from cycle 200', { timeout: 300_000 }, () => {
  // In its own process with --expose-gc, exactly as `npm run soak` runs (fewer cycles).
  const tmp = tempDir('tsm-soak-');
  try {
    const results = join(tmp.path, 'soak.json');
    const out = execFileSync(process.execPath, ['--expose-gc', join(ROOT, 'bench/soak.ts'), '--cycles=400', `--out=${results}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    assert.match(out, /flat: yes/, out);
  } finally {
    tmp.remove();
  }
});
