/**
 * A device as the rest of the process sees it: the fields of the Tailscale API's device object
 * that matter for selecting, addressing and labeling devices.
 */
export interface Device {
  readonly id: string;
  readonly nodeId: string;
  readonly name: string;
  readonly hostname: string;
  readonly addresses: readonly string[];
  readonly tags: readonly string[];
  readonly online: boolean;
  readonly os: string;
  readonly authorized: boolean;
  readonly isExternal: boolean;
  readonly user: string;
  /** Value of the `tailnet` label for this device's series; empty when not labeled. */
  readonly tailnet: string;
}

/** One receiver's latest device list. */
export interface InventorySnapshot {
  readonly source: string;
  readonly tailnet: string;
  readonly devices: readonly Device[];
  /** When this list was fetched (ms). */
  readonly fetchedMs: number;
  /** False while the API fails and this is the last good list. */
  readonly fresh: boolean;
}

/** Decides whether a device is wanted (device filter, sharding). */
export type DeviceSelector = (d: Device) => boolean;

/**
 * Where `tailscale_api` receivers publish the inventory and `device_metrics` receivers and the
 * device filter read it, so the API is called once per cycle for the whole process.
 */
export class InventoryHub {
  private readonly _snapshots = new Map<string, InventorySnapshot>();
  private readonly _listeners = new Set<(s: InventorySnapshot) => void>();

  publish(s: InventorySnapshot): void {
    this._snapshots.set(s.source, s);
    for (const l of this._listeners) l(s);
  }

  /** Forgets a source that no longer exists (a receiver removed by a reload). */
  remove(source: string): void {
    this._snapshots.delete(source);
  }

  /** The latest snapshot of `source`, or of every source when omitted. */
  get(source: string): InventorySnapshot | undefined {
    return this._snapshots.get(source);
  }

  all(): InventorySnapshot[] {
    return [...this._snapshots.values()];
  }

  /** Every known device across sources (later sources win on id clashes). */
  devices(): Device[] {
    const out: Device[] = [];
    for (const s of this._snapshots.values()) out.push(...s.devices);
    return out;
  }

  /** How many devices `devices()` would list, without listing them (`/health` asks often). */
  deviceCount(): number {
    let n = 0;
    for (const s of this._snapshots.values()) n += s.devices.length;
    return n;
  }

  subscribe(fn: (s: InventorySnapshot) => void): () => void {
    this._listeners.add(fn);
    return () => this._listeners.delete(fn);
  }
}
