/**
 * Makes a label value safe and bounded: well-formed Unicode (lone surrogates become U+FFFD) and
 * at most `max` code points. Newlines and quotes are legal in label values; the serializers
 * escape them. The value may come from a device or the API and be megabytes long, so it is cut
 * to at most 2 × `max` UTF-16 units (enough for `max` code points) before any per-character work.
 */
export function boundLabel(value: string, max = 128): string {
  const head = value.length > max * 2 ? value.slice(0, max * 2) : value;
  const v = head.isWellFormed() ? head : head.toWellFormed();
  if (v.length <= max) return v;
  let cps = 0;
  let i = 0;
  while (i < v.length && cps < max) {
    const c = v.charCodeAt(i);
    i += c >= 0xd800 && c <= 0xdbff && i + 1 < v.length ? 2 : 1;
    cps++;
  }
  return v.slice(0, i);
}
