/**
 * One type and one HELP per metric name across every device of a receiver.
 *
 * Devices are untrusted and may disagree: a compromised node can send a well-known family with
 * another type. Letting "whoever answered first this cycle" decide would make the type flap
 * between cycles and, in the Prometheus serializer, a conflict would drop the family for every
 * device. Instead the registry keeps the type a name was admitted with; at the end of each cycle
 * the type most devices sent wins (a strict majority over the current one is needed to switch),
 * so a single hostile device is outvoted within one cycle and an honest fleet never flaps.
 */

/** The Prometheus family kinds after conversion (summaries are flattened to gauges). */
export type OutputKind = 'counter' | 'gauge' | 'histogram';

interface Entry {
  kind: OutputKind;
  help: string;
  /** Devices that sent this name with each kind in the current cycle. */
  votes: Map<OutputKind, number>;
  /** Last cycle in which any device sent the name. */
  seen: number;
}

export interface FamilyRegistryOptions {
  /** Most names held (new names beyond it are refused until old ones age out). */
  maxEntries?: number;
  /** Most characters held in names and HELP texts. */
  maxChars?: number;
  /** Cycles a name is kept after the last device stopped sending it. */
  keepCycles?: number;
}

export type AdmitResult = 'ok' | 'type_conflict' | 'full';

export class FamilyRegistry {
  private readonly _entries = new Map<string, Entry>();
  private _chars = 0;
  private _cycle = 0;
  private readonly _maxEntries: number;
  private readonly _maxChars: number;
  private readonly _keep: number;

  constructor(o: FamilyRegistryOptions = {}) {
    this._maxEntries = o.maxEntries ?? 20_000;
    this._maxChars = o.maxChars ?? 8 * 1024 * 1024;
    this._keep = o.keepCycles ?? 3;
  }

  /**
   * Whether a device may contribute `name` as `kind` this cycle. The first device to send a
   * new name admits it; later devices must agree with the registered kind.
   */
  admit(name: string, kind: OutputKind, help: string): AdmitResult {
    let e = this._entries.get(name);
    if (!e) {
      const cost = name.length + help.length + 64;
      if (this._entries.size >= this._maxEntries || this._chars + cost > this._maxChars) return 'full';
      e = { kind, help, votes: new Map(), seen: this._cycle };
      this._entries.set(name, e);
      this._chars += cost;
    }
    e.seen = this._cycle;
    e.votes.set(kind, (e.votes.get(kind) ?? 0) + 1);
    if (e.kind !== kind) return 'type_conflict';
    if (!e.help && help) {
      this._chars += help.length;
      e.help = help;
    }
    return 'ok';
  }

  /** The HELP text registered for `name` (stable across devices and cycles). */
  help(name: string): string {
    return this._entries.get(name)?.help ?? '';
  }

  kind(name: string): OutputKind | undefined {
    return this._entries.get(name)?.kind;
  }

  /** Ends a cycle: applies majority votes and forgets names no device sent for a while. */
  endCycle(): void {
    for (const [name, e] of this._entries) {
      if (this._cycle - e.seen >= this._keep) {
        this._entries.delete(name);
        this._chars -= name.length + e.help.length + 64;
        continue;
      }
      const current = e.votes.get(e.kind) ?? 0;
      let best = e.kind;
      let bestVotes = current;
      for (const [k, n] of e.votes) {
        if (n > bestVotes) {
          best = k;
          bestVotes = n;
        }
      }
      if (best !== e.kind) {
        e.kind = best;
        // The old HELP described the outvoted type; the next device of the winning kind sets it.
        this._chars -= e.help.length;
        e.help = '';
      }
      e.votes.clear();
    }
    this._cycle++;
  }

  get size(): number {
    return this._entries.size;
  }
}
