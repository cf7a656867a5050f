import { ErrorCode, TsmetricsError } from '../errors.ts';
import type { AnyFactory, ComponentKind, ExporterFactory, ProcessorFactory, ReceiverFactory } from './types.ts';

/** Factories by kind and type id. Built from an explicit list; never by import side effects. */
export class ComponentRegistry {
  readonly receivers = new Map<string, ReceiverFactory<unknown>>();
  readonly processors = new Map<string, ProcessorFactory<unknown>>();
  readonly exporters = new Map<string, ExporterFactory<unknown>>();

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
    return this.exporters;
  }

  get(kind: ComponentKind, type: string): ReceiverFactory<unknown> | ProcessorFactory<unknown> | ExporterFactory<unknown> | undefined {
    return this._map(kind).get(type) as ReceiverFactory<unknown> | ProcessorFactory<unknown> | ExporterFactory<unknown> | undefined;
  }

  all(): Array<ReceiverFactory<unknown> | ProcessorFactory<unknown> | ExporterFactory<unknown>> {
    return [...this.receivers.values(), ...this.processors.values(), ...this.exporters.values()];
  }
}
