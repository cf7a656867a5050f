import { ConfigError } from '../errors.ts';

const TYPE_RE = /^[a-zA-Z][0-9a-zA-Z_]{0,62}$/;
const NAME_RE = /^[^\s/]{1,64}$/;

/** A component instance id, `type[/name]`, as in the OpenTelemetry Collector. */
export interface ComponentId {
  readonly type: string;
  readonly name: string | undefined;
  /** `type` or `type/name`. */
  readonly key: string;
}

/** Parses `type[/name]`; returns an error message instead of throwing. */
export function parseComponentId(text: string): ComponentId | string {
  const slash = text.indexOf('/');
  const type = slash < 0 ? text : text.slice(0, slash);
  const name = slash < 0 ? undefined : text.slice(slash + 1);
  if (!TYPE_RE.test(type)) return `invalid component type "${type}" (must match ${TYPE_RE.source})`;
  if (name !== undefined && !NAME_RE.test(name)) return `invalid component name "${name}"`;
  return { type, name, key: text };
}

export function componentId(text: string): ComponentId {
  const id = parseComponentId(text);
  if (typeof id === 'string') throw new ConfigError([{ source: 'code', path: text, message: id }]);
  return id;
}
