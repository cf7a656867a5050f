/**
 * Makes a label value safe and bounded: well-formed Unicode (lone surrogates replaced), control
 * characters other than tab removed, and cut to `max` code points.
 */
export function boundLabel(value: string, max = 128): string {
  let v = value.isWellFormed() ? value : value.toWellFormed();
  if (/[\u0000-\u0008\u000a-\u001f\u007f]/.test(v)) v = v.replace(/[\u0000-\u0008\u000a-\u001f\u007f]/g, '');
  if (v.length <= max) return v;
  const cps = Array.from(v);
  return cps.length <= max ? v : cps.slice(0, max).join('');
}
