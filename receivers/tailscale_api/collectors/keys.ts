import { ApiCallError } from '../client.ts';
import { b01, bool, boundedCalls, isObj, listOf, parseJson, records, seconds, str, strings, type Collector, type CollectorContext, type MetricDef } from './common.ts';

export const KEY_METRICS = {
  info: ['tailscale_key_info', 'A key of the tailnet: auth key, OAuth client, API access token or federated identity (value is always 1).', 'id, keyType, description, userId'],
  created: ['tailscale_key_created_timestamp', 'Unix time the key was created.', 'created'],
  expiry: ['tailscale_key_expiry_timestamp', 'Unix time the key expires; absent for keys that never expire (OAuth clients, federated identities).', 'expires'],
  revoked: ['tailscale_key_revoked', 'Whether the key was revoked (1) or not (0).', 'revoked'],
  invalid: ['tailscale_key_invalid', 'Whether the key can no longer be used, revoked or expired (1), or is valid (0).', 'invalid'],
  capability: ['tailscale_key_capability', 'Whether an auth key creates devices with a capability (reusable, ephemeral, preauthorized).', 'capabilities.devices.create.{reusable,ephemeral,preauthorized}'],
  deviceTag: ['tailscale_key_device_tag', 'A tag an auth key applies to the devices it registers (value is always 1).', 'capabilities.devices.create.tags'],
  scope: ['tailscale_key_scope', 'A scope of an OAuth client, federated identity or access token (value is always 1).', 'scopes'],
  tag: ['tailscale_key_tag', 'A tag an OAuth client or federated identity is restricted to (value is always 1).', 'tags'],
  count: ['tailscale_keys', 'Keys by type.', 'keys[] counted by keyType'],
  credentialInfo: ['tailscale_credential_info', 'The credential tsmetrics itself uses (value is always 1).', 'GET …/keys/{own id}: id, keyType'],
  credentialExpiry: ['tailscale_credential_expiry_timestamp', 'Unix time the credential tsmetrics uses expires; absent when it never expires (OAuth clients, federated identities).', 'GET …/keys/{own id}: expires'],
  credentialInvalid: ['tailscale_credential_invalid', 'Whether the credential tsmetrics uses is revoked or expired (1) or valid (0).', 'GET …/keys/{own id}: invalid'],
} as const satisfies Record<string, MetricDef>;

interface Key {
  id: string;
  keyType: string;
  description: string;
  userId: string;
  created: number | undefined;
  expires: number | undefined;
  revoked: boolean;
  invalid: boolean | undefined;
  capabilities: Array<[string, boolean]>;
  deviceTags: string[] | undefined;
  scopes: string[] | undefined;
  tags: string[] | undefined;
  /** The list gave only the id (older API behaviour): the details need their own call. */
  bare: boolean;
}

function decodeKey(ctx: CollectorContext, r: Record<string, unknown>): Key | undefined {
  const id = str(r.id);
  if (!id) return undefined;
  const create = isObj(r.capabilities) && isObj(r.capabilities.devices) && isObj(r.capabilities.devices.create) ? r.capabilities.devices.create : undefined;
  const capabilities: Array<[string, boolean]> = [];
  for (const c of ['reusable', 'ephemeral', 'preauthorized'] as const) {
    const v = bool(create?.[c]);
    if (v !== undefined) capabilities.push([c, v]);
  }
  return {
    id,
    keyType: str(r.keyType) ?? '',
    description: str(r.description) ?? '',
    userId: str(r.userId) ?? '',
    created: seconds(r.created),
    expires: seconds(r.expires),
    // Revoked keys carry the time of revocation; some lists only say `invalid`.
    revoked: typeof r.revoked === 'string' && r.revoked !== '',
    invalid: bool(r.invalid),
    capabilities,
    deviceTags: create ? strings(ctx, create.tags, 'auth key tags') : undefined,
    scopes: strings(ctx, r.scopes, 'key scopes'),
    tags: strings(ctx, r.tags, 'credential tags'),
    // Never `key`: it is the secret, sent only once at creation.
    bare: r.keyType === undefined && r.created === undefined,
  };
}

/**
 * `keys`: one `GET …/keys?all=true` (every key type). The credential tsmetrics uses is looked up
 * in that list, or read with `GET …/keys/{own id}` (which any scope may do) when the list lacks
 * it or cannot be read, so its expiry is known even without the keys scopes. List entries that
 * carry only an id (older API behaviour) are read one by one, at most `max_calls` per cycle.
 */
export function keysCollector(): Collector {
  return {
    async collect(ctx: CollectorContext) {
      const base = `${ctx.client.tailnetPath}/keys`;
      let keys: Key[] | undefined;
      let listError: unknown;
      try {
        const { text } = await ctx.get(`${base}?all=true`);
        keys = records(ctx, listOf(parseJson(text, 'key list'), 'keys', 'key list', ctx.limits.maxItems), 'keys', (r) => decodeKey(ctx, r), (k) => k.id);
      } catch (err) {
        // A missing scope still leaves the own-key call, which every scope may make.
        if (!(err instanceof ApiCallError) || (err.status !== 403 && err.status !== 404)) throw err;
        listError = err;
      }
      if (keys) {
        const bare = keys.filter((k) => k.bare);
        if (bare.length) {
          const { results, skipped } = await boundedCalls(bare, ctx.settings.max_calls, ctx.settings.max_concurrent, async (k) => decodeKey(ctx, asObj(parseJson((await ctx.get(`${base}/${encodeURIComponent(k.id)}`)).text, 'key'))));
          const full = new Map<string, Key>();
          for (const r of results) if (r.value) full.set(r.item.id, r.value);
          keys = keys.map((k) => full.get(k.id) ?? k);
          if (skipped) ctx.drop('limit', 'key details not read this cycle (collectors.keys.max_calls)', skipped);
        }
        emitKeys(ctx, keys);
      }
      await emitCredential(ctx, keys, base);
      if (listError) throw listError;
    },
  };
}

const asObj = (v: unknown): Record<string, unknown> => (isObj(v) ? v : {});

function emitKeys(ctx: CollectorContext, keys: readonly Key[]): void {
  const o = ctx.out;
  const byType = new Map<string, number>();
  for (const k of keys) {
    const id = { key_id: k.id };
    o.gauge(KEY_METRICS.info, { ...id, key_type: k.keyType, description: k.description, user_id: k.userId }, 1);
    o.gauge(KEY_METRICS.created, id, k.created);
    o.gauge(KEY_METRICS.expiry, id, k.expires);
    if (!k.bare) o.gauge(KEY_METRICS.revoked, id, b01(k.revoked));
    if (k.invalid !== undefined) o.gauge(KEY_METRICS.invalid, id, b01(k.invalid));
    for (const [capability, v] of k.capabilities) o.gauge(KEY_METRICS.capability, { ...id, capability }, b01(v));
    for (const tag of k.deviceTags ?? []) o.gauge(KEY_METRICS.deviceTag, { ...id, tag }, 1);
    for (const scope of k.scopes ?? []) o.gauge(KEY_METRICS.scope, { ...id, scope }, 1);
    for (const tag of k.tags ?? []) o.gauge(KEY_METRICS.tag, { ...id, tag }, 1);
    byType.set(k.keyType, (byType.get(k.keyType) ?? 0) + 1);
  }
  for (const [key_type, n] of byType) o.gauge(KEY_METRICS.count, { key_type }, n);
}

async function emitCredential(ctx: CollectorContext, keys: readonly Key[] | undefined, base: string): Promise<void> {
  const cred = ctx.client.credential;
  if (!cred.keyId) {
    ctx.drop('decode', 'own credential: its key id cannot be told from the credential, so its expiry is not reported', 1);
    return;
  }
  let own = keys?.find((k) => k.id === cred.keyId && !k.bare);
  if (!own) {
    try {
      own = decodeKey(ctx, asObj(parseJson((await ctx.get(`${base}/${encodeURIComponent(cred.keyId)}`)).text, 'own key')));
    } catch (err) {
      if (ctx.signal.aborted) throw err;
      ctx.drop('decode', 'own credential: GET …/keys/{own id} failed, so its expiry is not reported', 1);
      return;
    }
  }
  if (!own) return;
  const labels = { key_id: cred.keyId, credential_type: cred.type };
  ctx.out.gauge(KEY_METRICS.credentialInfo, { ...labels, key_type: own.keyType }, 1);
  ctx.out.gauge(KEY_METRICS.credentialExpiry, labels, own.expires);
  if (own.invalid !== undefined) ctx.out.gauge(KEY_METRICS.credentialInvalid, labels, b01(own.invalid));
}
