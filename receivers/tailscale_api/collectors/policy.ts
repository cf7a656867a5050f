import { createHash } from 'node:crypto';
import { parse as parseJsonc, printParseErrorCode, type ParseError } from 'jsonc-parser';
import { isObj, type Collector, type CollectorContext, type MetricDef } from './common.ts';

export const POLICY_METRICS = {
  info: ['tailscale_policy_info', 'The policy file in force, by a stable hash of its text (value is always 1).', 'sha256 of the HuJSON text (first 16 hex digits)'],
  lastChange: ['tailscale_policy_last_change_timestamp', 'Unix time tsmetrics first saw the current policy (its ETag, or its hash, changed); after a restart, the time of the first read.', 'ETag header (else the text hash)'],
  changes: ['tailscale_policy_changes_total', 'Policy changes tsmetrics has seen since it started.', 'ETag header (else the text hash)'],
  size: ['tailscale_policy_size_bytes', 'Size of the policy file’s HuJSON text.', 'the policy text'],
  entries: ['tailscale_policy_entries', 'Entries of a policy section: rules (acls, grants, ssh, nodeAttrs), tests (tests, sshTests), names (groups, tagOwners, hosts, postures, ipsets) or auto-approvers (routes, exit node, services).', 'the parsed HuJSON'],
  valid: ['tailscale_policy_valid', 'Whether the API reports the policy valid, without errors (1) or not (0).', 'errors of ?details=true'],
  warnings: ['tailscale_policy_warnings', 'Warnings the API reports for the policy.', 'warnings of ?details=true'],
  errors: ['tailscale_policy_errors', 'Errors the API reports for the policy.', 'errors of ?details=true'],
} as const satisfies Record<string, MetricDef>;

/** Sections that are lists (counted by length) and maps (counted by keys). */
const LIST_SECTIONS = ['acls', 'grants', 'ssh', 'nodeAttrs', 'tests', 'sshTests'] as const;
const MAP_SECTIONS = ['groups', 'tagOwners', 'hosts', 'postures', 'ipsets'] as const;

interface Fetched {
  text: string;
  etag: string | undefined;
  verdict: { errors: number; warnings: number } | undefined;
}

/** `?details=true` wraps the HuJSON in `{acl: base64, warnings, errors}`; anything else is the HuJSON itself. */
function unwrap(body: string, etag: string | undefined): Fetched {
  const trimmed = body.trimStart();
  if (trimmed.startsWith('{')) {
    try {
      const d = JSON.parse(body) as unknown;
      if (isObj(d) && typeof d.acl === 'string') {
        const list = (v: unknown): number => (Array.isArray(v) ? v.length : 0);
        return { text: Buffer.from(d.acl, 'base64').toString('utf8'), etag, verdict: { errors: list(d.errors), warnings: list(d.warnings) } };
      }
    } catch {
      // HuJSON with comments or trailing commas is not JSON: it is the policy itself.
    }
  }
  return { text: body, etag, verdict: undefined };
}

/** The section counts, or the reason the text could not be parsed. */
export function countPolicy(text: string): { counts: Record<string, number> } | { error: string } {
  const errors: ParseError[] = [];
  let doc: unknown;
  try {
    doc = parseJsonc(text, errors, { allowTrailingComma: true, disallowComments: false, allowEmptyContent: false });
  } catch (err) {
    // The parser recurses per nesting level; a hostile file nested deeply enough overflows it.
    return { error: err instanceof RangeError ? 'nested too deeply' : String(err) };
  }
  if (errors.length) return { error: `${printParseErrorCode((errors[0] as ParseError).error)} at offset ${(errors[0] as ParseError).offset}` };
  if (!isObj(doc)) return { error: 'not an object' };
  const counts: Record<string, number> = {};
  for (const k of LIST_SECTIONS) counts[k] = Array.isArray(doc[k]) ? doc[k].length : 0;
  for (const k of MAP_SECTIONS) counts[k] = isObj(doc[k]) ? Object.keys(doc[k]).length : 0;
  const aa = isObj(doc.autoApprovers) ? doc.autoApprovers : {};
  counts.autoApprovers = (isObj(aa.routes) ? Object.keys(aa.routes).length : 0) + (Array.isArray(aa.exitNode) ? aa.exitNode.length : 0) + (isObj(aa.services) ? Object.keys(aa.services).length : 0);
  return { counts };
}

/**
 * `policy`: one `GET …/acl?details=true` with no Accept header (so the text is the HuJSON as
 * written, comments included, and the API's validation verdict comes with it). Changes are
 * detected by the ETag, or by the text's hash when there is none; state is in memory, so after a
 * restart the first read counts as "first seen", not as a change.
 */
export function policyCollector(startMs: number): Collector {
  let lastKey: string | undefined;
  let lastChangeS = 0;
  let changes = 0;
  return {
    async collect(ctx: CollectorContext) {
      const res = await ctx.get(`${ctx.client.tailnetPath}/acl?details=true`, { accept: null });
      const p = unwrap(res.text, res.etag);
      const hash = createHash('sha256').update(p.text).digest('hex').slice(0, 16);
      const key = p.etag ?? hash;
      if (key !== lastKey) {
        if (lastKey !== undefined) changes++;
        lastKey = key;
        lastChangeS = Math.floor(ctx.nowMs / 1000);
      }
      const o = ctx.out;
      o.gauge(POLICY_METRICS.info, { hash }, 1);
      o.gauge(POLICY_METRICS.lastChange, {}, lastChangeS);
      o.counter(POLICY_METRICS.changes, {}, changes, startMs);
      o.gauge(POLICY_METRICS.size, {}, Buffer.byteLength(p.text));
      if (p.verdict) {
        o.gauge(POLICY_METRICS.valid, {}, p.verdict.errors === 0 ? 1 : 0);
        o.gauge(POLICY_METRICS.warnings, {}, p.verdict.warnings);
        o.gauge(POLICY_METRICS.errors, {}, p.verdict.errors);
      }
      const parsed = countPolicy(p.text);
      if ('error' in parsed) ctx.drop('parse', `policy file could not be parsed as HuJSON (${parsed.error}); its section counts are left out`, 1);
      else for (const [section, n] of Object.entries(parsed.counts)) o.gauge(POLICY_METRICS.entries, { section }, n);
    },
  };
}
