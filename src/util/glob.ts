/** Compiles `*` globs (case-insensitive) into a matcher; `*` matches any run of characters. */
export function globMatcher(patterns: readonly string[]): (value: string) => boolean {
  const exact = new Set<string>();
  const res: RegExp[] = [];
  for (const p of patterns) {
    const lower = p.toLowerCase();
    if (!lower.includes('*')) exact.add(lower);
    else res.push(new RegExp(`^${lower.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`));
  }
  return (value: string) => {
    const v = value.toLowerCase();
    if (exact.has(v)) return true;
    for (const r of res) if (r.test(v)) return true;
    return false;
  };
}
