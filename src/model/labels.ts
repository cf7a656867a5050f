/**
 * Makes a label value safe and bounded: well-formed Unicode (lone surrogates become U+FFFD) and
 * at most `max` code points. Newlines and quotes are legal in label values; the serializers
 * escape them.
 */
export function boundLabel(value: string, max = 128): string {
  const v = value.isWellFormed() ? value : value.toWellFormed();
  if (v.length <= max) return v;
  const cps = Array.from(v);
  return cps.length <= max ? v : cps.slice(0, max).join('');
}
