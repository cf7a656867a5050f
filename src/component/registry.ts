import { ErrorCode, TsmetricsError } from '../errors.ts';
import type { AnyFactory, ComponentKind, ConnectorFactory, ExporterFactory, ProcessorFactory, ReceiverFactory } from './types.ts';

type KindFactory = ReceiverFactory<unknown> | ProcessorFactory<unknown> | ExporterFactory<unknown> | ConnectorFactory<unknown>;

/** Factories by kind and type id. Built from an explicit list; never by import side effects. */
export class ComponentRegistry {
  readonly receivers = new Map<string, ReceiverFactory<unknown>>();
  readonly processors = new Map<string, ProcessorFactory<unknown>>();
  readonly exporters = new Map<string, ExporterFactory<unknown>>();
  readonly connectors = new Map<string, ConnectorFactory<unknown>>();

  /** Builds a registry; throws `TSM_ERR_DUPLICATE_FACTORY` when a kind/type appears twice. */
  constructor(factories: ReadonlyArray<AnyFactory>) {
    for (const f of factories) {
      const map = this._map(f.kind) as Map<string, unknown>;
      if (map.has(f.type)) {
        throw new TsmetricsError(ErrorCode.DUPLICATE_FACTORY, `duplicate ${f.kind} factory "${f.type}"`);
      }
      map.set(f.type, f);
    }
  }

  private _map(kind: ComponentKind): Map<string, unknown> {
    if (kind === 'receiver') return this.receivers;
    if (kind === 'processor') return this.processors;
    if (kind === 'connector') return this.connectors;
    return this.exporters;
  }

  get(kind: ComponentKind, type: string): KindFactory | undefined {
    return this._map(kind).get(type) as KindFactory | undefined;
  }

  /** Type ids of one kind, for "known: …" messages. */
  types(kind: ComponentKind): string[] {
    return [...this._map(kind).keys()];
  }

  all(): KindFactory[] {
    return [...this.receivers.values(), ...this.processors.values(), ...this.exporters.values(), ...this.connectors.values()];
  }
}
