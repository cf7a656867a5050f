import { RE2JS } from 're2js';
import { ErrorCode, TsmetricsError } from '../../src/errors.ts';
import { hashmod } from '../../src/util/hashmod.ts';

export type RelabelAction =
  | 'replace'
  | 'keep'
  | 'drop'
  | 'keepequal'
  | 'dropequal'
  | 'hashmod'
  | 'labelmap'
  | 'labeldrop'
  | 'labelkeep'
  | 'lowercase'
  | 'uppercase';

/** A Prometheus relabel rule, with Prometheus' own YAML field names. */
export interface RelabelConfig {
  source_labels?: string[];
  separator?: string;
  regex?: string;
  modulus?: number;
  target_label?: string;
  replacement?: string;
  action?: RelabelAction | string;
}

/** An invalid relabel rule; the message says why, as Prometheus would. */
export class RelabelConfigError extends TsmetricsError {
  constructor(message: string) {
    super(ErrorCode.RELABEL_CONFIG, message);
    this.name = 'RelabelConfigError';
  }
}

const ACTIONS = new Set(['replace', 'keep', 'drop', 'keepequal', 'dropequal', 'hashmod', 'labelmap', 'labeldrop', 'labelkeep', 'lowercase', 'uppercase']);
const DEFAULT_REGEX = '(.*)';
const DEFAULT_SEPARATOR = ';';
const DEFAULT_REPLACEMENT = '$1';
const LABEL_NAME_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
// Prometheus' check for templated target labels (letters, `_`, `$name`, `${name}`), in RE2 so
// even a hostile config string cannot make it backtrack.
const RELABEL_TARGET = RE2JS.compile('^(?:(?:[a-zA-Z_]|\\$(?:\\{\\w+\\}|\\w+))+\\w*)+$');
const KNOWN_FIELDS = new Set(['source_labels', 'separator', 'regex', 'modulus', 'target_label', 'replacement', 'action']);

/** Compiled form of a rule (regex compiled once, defaults applied). */
interface CompiledRule {
  readonly action: RelabelAction;
  readonly sourceLabels: readonly string[];
  readonly separator: string;
  readonly regexText: string;
  readonly regex: RE2JS;
  readonly defaultRegex: boolean;
  readonly modulus: number;
  readonly targetLabel: string;
  readonly replacement: string;
  readonly names: Readonly<Record<string, number>>;
  /** Label names are checked as UTF-8 (else: the legacy character set). */
  readonly utf8: boolean;
  /** The target label is a template, so each expansion must be checked. */
  readonly templatedTarget: boolean;
  /** Match results by input value; label values repeat across series, so this saves most regex work. */
  readonly cache: Map<string, (string | null)[] | null>;
}

const CACHE_LIMIT = 4096;

/** Compiles a regex with Prometheus 3 semantics: fully anchored, `.` matches newline, RE2 syntax. */
function compileRegex(text: string): RE2JS {
  try {
    return RE2JS.compile(`^(?s:${text})$`);
  } catch (err) {
    throw new RelabelConfigError(`invalid regex ${JSON.stringify(text)}: ${(err as Error).message}`);
  }
}

/**
 * How label names in rules and results are checked, as Prometheus 3's `name_validation_scheme`:
 * `utf8` (its default) accepts any non-empty well-formed text, `legacy` only
 * `[a-zA-Z_][a-zA-Z0-9_]*`.
 */
export type NameValidationScheme = 'utf8' | 'legacy';

/** Whether `name` is a label name under the scheme (`utf8`: non-empty, no lone surrogate). */
export function isValidLabelName(name: string, scheme: NameValidationScheme): boolean {
  return scheme === 'utf8' ? name.length > 0 && name.isWellFormed() : LABEL_NAME_RE.test(name);
}

/** Validates a rule as Prometheus does; throws `RelabelConfigError` naming the problem. */
export function validateRelabelConfig(rule: RelabelConfig, scheme: NameValidationScheme = 'utf8'): void {
  compileRule(rule, scheme);
}

/**
 * A field as Prometheus' YAML decoding leaves it: absent keeps the default, an explicit null
 * is the field's zero value (so `separator: null` is "" and no longer the default).
 */
function field(rule: RelabelConfig, key: keyof RelabelConfig, absent: unknown, zero: unknown): unknown {
  const v = (rule as Record<string, unknown>)[key];
  return v === undefined ? absent : v === null ? zero : v;
}

function compileRule(rule: RelabelConfig, scheme: NameValidationScheme): CompiledRule {
  if (rule === null || typeof rule !== 'object' || Array.isArray(rule)) throw new RelabelConfigError('a relabel rule must be a map');
  for (const k of Object.keys(rule)) if (!KNOWN_FIELDS.has(k)) throw new RelabelConfigError(`unknown field "${k}" in relabel rule`);
  if (scheme !== 'utf8' && scheme !== 'legacy') throw new RelabelConfigError(`unknown name validation scheme "${String(scheme)}", must be utf8 or legacy`);
  const rawAction = field(rule, 'action', 'replace', '');
  if (typeof rawAction !== 'string') throw new RelabelConfigError('relabel action must be a string');
  if (rawAction === '') throw new RelabelConfigError('relabel action cannot be empty');
  const action = rawAction.toLowerCase();
  if (!ACTIONS.has(action)) throw new RelabelConfigError(`unknown relabel action "${rawAction}"`);
  // Absent or null: no source labels at all; an explicit list, even an empty one, is "set"
  // (Prometheus refuses `source_labels: []` on labeldrop too).
  const src = rule.source_labels ?? undefined;
  if (src !== undefined && (!Array.isArray(src) || src.some((s) => typeof s !== 'string'))) throw new RelabelConfigError('source_labels must be a list of label names');
  for (const s of src ?? []) if (!isValidLabelName(s, scheme)) throw new RelabelConfigError(`${JSON.stringify(s)} is not a valid label name in source_labels`);
  const separator = field(rule, 'separator', DEFAULT_SEPARATOR, '');
  // Prometheus compares the regex with its default by identity, so any regex written out —
  // even "(.*)" — counts as set for keepequal and dropequal.
  const regexSet = rule.regex !== undefined;
  const regexText = field(rule, 'regex', DEFAULT_REGEX, '');
  const target = field(rule, 'target_label', '', '');
  const replacement = field(rule, 'replacement', DEFAULT_REPLACEMENT, '');
  const modulus = field(rule, 'modulus', 0, 0);
  if (typeof separator !== 'string' || typeof regexText !== 'string' || typeof target !== 'string' || typeof replacement !== 'string') {
    throw new RelabelConfigError('separator, regex, target_label and replacement must be strings');
  }
  if (typeof modulus !== 'number' || !Number.isInteger(modulus) || modulus < 0) throw new RelabelConfigError('modulus must be a non-negative integer');
  if (modulus === 0 && action === 'hashmod') throw new RelabelConfigError('relabel configuration for hashmod requires non-zero modulus');
  if (['replace', 'hashmod', 'lowercase', 'uppercase', 'keepequal', 'dropequal'].includes(action) && target === '') {
    throw new RelabelConfigError(`relabel configuration for ${action} action requires 'target_label' value`);
  }
  // A template with `$` is checked as a template: under utf8 any well-formed text is a name.
  const validTemplate = (t: string): boolean => (scheme === 'utf8' ? isValidLabelName(t, scheme) : RELABEL_TARGET.matches(t));
  if (action === 'replace' && !(target.includes('$') ? validTemplate(target) : isValidLabelName(target, scheme))) throw new RelabelConfigError(`"${target}" is invalid 'target_label' for ${action} action`);
  if (['lowercase', 'uppercase', 'keepequal', 'dropequal', 'hashmod'].includes(action) && !isValidLabelName(target, scheme)) {
    throw new RelabelConfigError(`"${target}" is invalid 'target_label' for ${action} action`);
  }
  if (['lowercase', 'uppercase', 'keepequal', 'dropequal'].includes(action) && replacement !== DEFAULT_REPLACEMENT) {
    throw new RelabelConfigError(`'replacement' can not be set for ${action} action`);
  }
  if (action === 'labelmap' && !validTemplate(replacement)) throw new RelabelConfigError(`"${replacement}" is invalid 'replacement' for ${action} action`);
  if ((action === 'dropequal' || action === 'keepequal') && (regexSet || modulus !== 0 || separator !== DEFAULT_SEPARATOR || replacement !== DEFAULT_REPLACEMENT)) {
    throw new RelabelConfigError(`${action} action requires only 'source_labels' and \`target_label\`, and no other fields`);
  }
  if ((action === 'labeldrop' || action === 'labelkeep') && (src !== undefined || target !== '' || modulus !== 0 || separator !== DEFAULT_SEPARATOR || replacement !== DEFAULT_REPLACEMENT)) {
    throw new RelabelConfigError(`${action} action requires only 'regex', and no other fields`);
  }
  const regex = compileRegex(regexText);
  const names = (regex as unknown as { re2Input: { namedGroups: Record<string, number> } }).re2Input.namedGroups ?? {};
  return {
    action: action as RelabelAction,
    sourceLabels: src ?? [],
    separator,
    regexText,
    regex,
    defaultRegex: regexText === DEFAULT_REGEX,
    modulus,
    targetLabel: target,
    replacement,
    names,
    utf8: scheme === 'utf8',
    templatedTarget: target.includes('$'),
    cache: new Map(),
  };
}

/** Groups of a full match of `value`, or null when it does not match (cached per rule). */
function matchGroups(rule: CompiledRule, value: string): (string | null)[] | null {
  const hit = rule.cache.get(value);
  if (hit !== undefined) return hit;
  let out: (string | null)[] | null;
  if (rule.defaultRegex) out = [value, value];
  else {
    const m = rule.regex.matcher(value);
    if (!m.matches()) out = null;
    else {
      out = [];
      for (let i = 0; i <= m.groupCount(); i++) out.push(m.group(i));
    }
  }
  if (rule.cache.size >= CACHE_LIMIT) rule.cache.clear();
  rule.cache.set(value, out);
  return out;
}

function isWordChar(c: string): boolean {
  return /[\p{L}\p{Nd}_]/u.test(c);
}

/**
 * Expands `$1`, `${1}`, `$name`, `${name}` and `$$` exactly as Go's `regexp.Expand` does: a name
 * is the longest run of letters, digits and `_` (so `$1x` means group `1x`), unknown or
 * unmatched groups expand to nothing, and a malformed `$` is kept as is.
 */
export function expandTemplate(template: string, groups: readonly (string | null)[], names: Readonly<Record<string, number>>): string {
  if (!template.includes('$')) return template;
  let out = '';
  let i = 0;
  while (i < template.length) {
    const dollar = template.indexOf('$', i);
    if (dollar < 0) {
      out += template.slice(i);
      break;
    }
    out += template.slice(i, dollar);
    i = dollar + 1;
    if (template[i] === '$') {
      out += '$';
      i++;
      continue;
    }
    let j = i;
    const brace = template[j] === '{';
    if (brace) j++;
    const nameStart = j;
    while (j < template.length) {
      const cp = template.codePointAt(j) as number;
      const ch = String.fromCodePoint(cp);
      if (!isWordChar(ch)) break;
      j += ch.length;
    }
    const name = template.slice(nameStart, j);
    if (name === '' || (brace && template[j] !== '}')) {
      out += '$'; // malformed: the `$` is literal text
      continue;
    }
    if (brace) j++;
    i = j;
    let num = -1;
    if (/^\d+$/.test(name)) {
      num = 0;
      for (const c of name) {
        num = num * 10 + Number(c);
        if (num >= 1e8) {
          num = -1;
          break;
        }
      }
    }
    if (num >= 0) {
      const g = groups[num];
      if (g !== undefined && g !== null) out += g;
    } else {
      const idx = names[name];
      if (idx !== undefined) {
        const g = groups[idx];
        if (g !== undefined && g !== null) out += g;
      }
    }
  }
  return out;
}

function setLabel(labels: Record<string, string>, name: string, value: string): void {
  // As in Prometheus' label builder, an empty value deletes the label.
  if (value === '') delete labels[name];
  else labels[name] = value;
}

function applyRule(rule: CompiledRule, labels: Record<string, string>): boolean {
  let val: string;
  const src = rule.sourceLabels;
  if (src.length === 1) val = labels[src[0] as string] ?? '';
  else {
    val = '';
    for (let i = 0; i < src.length; i++) {
      if (i > 0) val += rule.separator;
      val += labels[src[i] as string] ?? '';
    }
  }
  switch (rule.action) {
    case 'drop':
      return matchGroups(rule, val) === null;
    case 'keep':
      return matchGroups(rule, val) !== null;
    case 'dropequal':
      return (labels[rule.targetLabel] ?? '') !== val;
    case 'keepequal':
      return (labels[rule.targetLabel] ?? '') === val;
    case 'replace': {
      if (val === '' && rule.defaultRegex && !rule.targetLabel.includes('$') && !rule.replacement.includes('$')) {
        setLabel(labels, rule.targetLabel, rule.replacement);
        return true;
      }
      const groups = matchGroups(rule, val);
      if (!groups) return true;
      // A target without `$` was checked when the rule was compiled.
      const target = rule.templatedTarget ? expandTemplate(rule.targetLabel, groups, rule.names) : rule.targetLabel;
      if (rule.templatedTarget && !(rule.utf8 ? target.length > 0 && target.isWellFormed() : LABEL_NAME_RE.test(target))) return true;
      setLabel(labels, target, expandTemplate(rule.replacement, groups, rule.names));
      return true;
    }
    case 'lowercase':
      setLabel(labels, rule.targetLabel, val.toLowerCase());
      return true;
    case 'uppercase':
      setLabel(labels, rule.targetLabel, val.toUpperCase());
      return true;
    case 'hashmod':
      setLabel(labels, rule.targetLabel, String(hashmod(val, rule.modulus)));
      return true;
    case 'labelmap': {
      for (const [name, value] of Object.entries(labels)) {
        const groups = matchGroups(rule, name);
        if (!groups) continue;
        const res = expandTemplate(rule.replacement, groups, rule.names);
        if (rule.utf8 ? res.length > 0 && res.isWellFormed() : LABEL_NAME_RE.test(res)) setLabel(labels, res, value);
      }
      return true;
    }
    case 'labeldrop':
      for (const name of Object.keys(labels)) if (matchGroups(rule, name) !== null) delete labels[name];
      return true;
    case 'labelkeep':
      for (const name of Object.keys(labels)) if (matchGroups(rule, name) === null) delete labels[name];
      return true;
  }
}

/** Compiled rules by rule object, one map per scheme (a rule compiles differently under each). */
const compiledCache: Record<NameValidationScheme, WeakMap<RelabelConfig, CompiledRule>> = { utf8: new WeakMap(), legacy: new WeakMap() };

/**
 * Compiles (and validates) rules once; the result can be reused for every series. `scheme`
 * decides which label names rules may name and write (default `utf8`, as Prometheus 3).
 */
export function compileRelabelConfigs(rules: readonly RelabelConfig[], scheme: NameValidationScheme = 'utf8'): CompiledRule[] {
  const cache = compiledCache[scheme] as WeakMap<RelabelConfig, CompiledRule> | undefined;
  return rules.map((r, i) => {
    const hit = r !== null && typeof r === 'object' ? cache?.get(r) : undefined;
    if (hit) return hit;
    try {
      const c = compileRule(r, scheme);
      cache?.set(r, c);
      return c;
    } catch (err) {
      if (err instanceof RelabelConfigError) throw new RelabelConfigError(`rule ${i + 1}: ${err.message}`);
      throw err;
    }
  });
}

/** Applies compiled rules; returns the new label set, or null when a rule dropped it. */
export function relabelCompiled(labels: Readonly<Record<string, string>>, rules: readonly CompiledRule[]): Record<string, string> | null {
  const out: Record<string, string> = { ...labels };
  for (const r of rules) if (!applyRule(r, out)) return null;
  return out;
}

/**
 * Applies Prometheus relabel rules to one label set (`__name__` is the metric name). Returns
 * the new labels, or null when the series is dropped. Input is not modified.
 */
export function relabel(labels: Record<string, string>, rules: RelabelConfig[], scheme: NameValidationScheme = 'utf8'): Record<string, string> | null {
  return relabelCompiled(labels, compileRelabelConfigs(rules, scheme));
}

export type { CompiledRule };
