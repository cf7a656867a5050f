/**
 * A line-by-line checker of Prometheus text exposition 0.0.4 as a serializer must write it
 * (legacy names only, no quoted names), written from the format description and independent
 * of the parser under test. It returns one problem per offending line; [] means valid.
 */

export const METRIC_NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
export const LABEL_NAME_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const LABEL = '[a-zA-Z_][a-zA-Z0-9_]*';
// A label value: no raw newline, quote or lone backslash; escapes are \\, \" and \n only.
const VALUE = '"(?:[^"\\\\\\n]|\\\\[\\\\"n])*"';
const FLOAT = '(?:[+-]?(?:\\d+\\.?\\d*|\\.\\d+)(?:[eE][+-]?\\d+)?|NaN|[+-]Inf)';
const HELP_RE = new RegExp(`^# HELP (${NAME}) ((?:[^\\\\\\n]|\\\\[\\\\n])*)$`);
const TYPE_RE = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`);
const SAMPLE_RE = new RegExp(`^(${NAME})(?:\\{(${LABEL}=${VALUE}(?:,${LABEL}=${VALUE})*)?\\})? (${FLOAT})(?: (-?\\d+))?$`);
const PAIR_RE = new RegExp(`(${LABEL})=${VALUE}`, 'g');

export interface LintOptions {
  /** Also report a label name that occurs twice on one line (on by default). */
  uniqueLabels?: boolean;
}

/** Problems of a serializer's output, `line N: …` each. */
export function lintExposition(text: string, opts: LintOptions = {}): string[] {
  const uniqueLabels = opts.uniqueLabels ?? true;
  const problems: string[] = [];
  if (text === '# no registered metrics') return problems;
  if (text !== '' && !text.endsWith('\n')) problems.push('the text does not end with a newline');
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  // Family name -> its TYPE; a family's samples must follow its own HELP/TYPE block.
  const types = new Map<string, string>();
  const helped = new Set<string>();
  let current: string | undefined;
  for (const [i, line] of lines.entries()) {
    const at = `line ${i + 1}: ${JSON.stringify(line.slice(0, 200))}`;
    if (line.startsWith('#')) {
      const h = HELP_RE.exec(line);
      const ty = TYPE_RE.exec(line);
      if (h) {
        const name = h[1] as string;
        if (helped.has(name)) problems.push(`${at}: a second HELP for ${name}`);
        helped.add(name);
        current = name;
      } else if (ty) {
        const name = ty[1] as string;
        if (types.has(name)) problems.push(`${at}: a second TYPE for ${name}`);
        types.set(name, ty[2] as string);
        current = name;
      } else problems.push(`${at}: neither a valid HELP nor a valid TYPE line`);
      continue;
    }
    const m = SAMPLE_RE.exec(line);
    if (!m) {
      problems.push(`${at}: not a valid sample line`);
      continue;
    }
    const name = m[1] as string;
    const type = current === undefined ? undefined : types.get(current);
    const belongs = name === current || (type === 'histogram' && [`${current}_bucket`, `${current}_count`, `${current}_sum`].includes(name)) || (type === 'summary' && [`${current}_count`, `${current}_sum`].includes(name));
    if (!belongs) problems.push(`${at}: sample ${name} is not part of the family ${current ?? '(none)'} it follows`);
    const names = [...(m[2] ?? '').matchAll(PAIR_RE)].map((p) => p[1] as string);
    if (names.includes('__name__')) problems.push(`${at}: the reserved label __name__`);
    if (uniqueLabels && new Set(names).size !== names.length) problems.push(`${at}: a label name occurs twice`);
    if (type === 'histogram' && name === `${current}_bucket` && names.filter((n) => n === 'le').length !== 1) problems.push(`${at}: a bucket needs exactly one le label`);
  }
  return problems;
}
