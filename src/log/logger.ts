/** Log levels in increasing severity. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFormat = 'text' | 'json';
export type LogFields = Record<string, unknown>;

const LEVEL_RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** A structured logger: one line per event, fields as key/value pairs. */
export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger that adds `fields` to every line (e.g. the component id). */
  child(fields: LogFields): Logger;
  isLevelEnabled(level: LogLevel): boolean;
}

export interface LoggerOptions {
  level?: LogLevel;
  format?: LogFormat;
  /** Where lines go; defaults to stderr so stdout stays free for command output. */
  write?: (line: string) => void;
  /** Secret values that must never be printed; each occurrence is replaced by [REDACTED]. */
  redactor?: Redactor;
  now?: () => Date;
}

/**
 * Collects secret values (tokens, client secrets) as they are loaded, and scrubs them from any
 * text that is about to leave the process. Scrubbing by value, not by key, also catches a secret
 * that ends up inside an error message or URL.
 */
export class Redactor {
  private readonly _secrets = new Set<string>();
  private readonly _slots = new Map<string, string>();
  /**
   * Registers a secret. With `slot`, the value replaces the one registered before under that
   * name, so secrets that rotate (OAuth access tokens, renewed every hour) do not pile up.
   */
  add(value: string | undefined | null, slot?: string): void {
    // Very short values would redact ordinary words ("status", "healthy"); real credentials
    // are long.
    if (!value || value.length < 8) return;
    if (slot !== undefined) {
      const prev = this._slots.get(slot);
      if (prev === value) return;
      if (prev !== undefined) this._secrets.delete(prev);
      this._slots.set(slot, value);
    }
    this._secrets.add(value);
  }
  scrub(text: string): string {
    let out = text;
    for (const s of this._secrets) {
      if (out.includes(s)) out = out.split(s).join('[REDACTED]');
    }
    return out;
  }
  get size(): number {
    return this._secrets.size;
  }
}

function fieldValue(v: unknown): unknown {
  if (v instanceof Error) return v.message;
  return v;
}

function textValue(v: unknown): string {
  const x = fieldValue(v);
  if (typeof x === 'string') return /[\s"=]/.test(x) || x === '' ? JSON.stringify(x) : x;
  if (typeof x === 'number' || typeof x === 'boolean' || x == null) return String(x);
  return JSON.stringify(x);
}

/** The parts of stdout/stderr the guarded writer uses. */
export interface OutputStream {
  write(chunk: string): boolean;
  on(event: 'error', listener: (err: Error) => void): unknown;
  readonly writableLength: number;
  readonly destroyed: boolean;
  readonly writable: boolean;
}

/**
 * Unwritten bytes a stream may hold before lines are dropped. Pipes are asynchronous, so a reader
 * that stops reading would otherwise grow the process's memory by every line logged.
 */
const MAX_PENDING_BYTES = 1024 * 1024;

interface OutputState {
  broken: boolean;
  dropped: number;
}
const outputs = new WeakMap<OutputStream, OutputState>();

/**
 * Makes a closed or stalled reader harmless for `stream` (idempotent): a write error (EPIPE from
 * `tsmetrics | head -2`) marks the stream broken instead of becoming an uncaught exception, and
 * nothing is written to it again. Without this, the uncaught-exception handler logs, the log line
 * fails, and the process spins.
 */
export function guardOutput(stream: OutputStream): void {
  if (outputs.has(stream)) return;
  const state: OutputState = { broken: false, dropped: 0 };
  outputs.set(stream, state);
  stream.on('error', () => {
    state.broken = true;
  });
}

/**
 * A line writer for `stream` that never throws and never blocks on its reader: it stops for good
 * once the stream broke, and drops lines (saying how many when it can write again) while more than
 * 1 MiB is waiting for a slow reader.
 */
export function streamWriter(stream: OutputStream): (line: string) => void {
  guardOutput(stream);
  const state = outputs.get(stream) as OutputState;
  return (line) => {
    if (state.broken || stream.destroyed || !stream.writable) return;
    if (stream.writableLength > MAX_PENDING_BYTES) {
      state.dropped++;
      return;
    }
    try {
      if (state.dropped) {
        stream.write(`${state.dropped} log lines dropped: the reader was not keeping up\n`);
        state.dropped = 0;
      }
      stream.write(line + '\n');
    } catch {
      state.broken = true;
    }
  };
}

/** True while a line is being handed to a writer: a log call made from inside it is dropped. */
let writing = false;

/** Creates the process logger. */
export function createLogger(opts: LoggerOptions = {}, bound: LogFields = {}): Logger {
  const level = opts.level ?? 'info';
  const format = opts.format ?? 'text';
  const write = opts.write ?? streamWriter(process.stderr);
  const now = opts.now ?? (() => new Date());
  const redactor = opts.redactor;
  const min = LEVEL_RANK[level];

  const format1 = (lvl: LogLevel, msg: string, all: LogFields): string => {
    if (format === 'json') {
      const obj: LogFields = { time: now().toISOString(), level: lvl, msg };
      for (const [k, v] of Object.entries(all)) obj[k] = fieldValue(v);
      return JSON.stringify(obj);
    }
    const parts = [now().toISOString(), lvl.toUpperCase().padEnd(5), msg];
    for (const [k, v] of Object.entries(all)) parts.push(`${k}=${textValue(v)}`);
    return parts.join(' ');
  };

  // Logging never throws into the caller: it runs in error paths and in the uncaught-exception
  // handler, where a throw would turn one failure into another.
  const emit = (lvl: LogLevel, msg: string, fields?: LogFields): void => {
    if (LEVEL_RANK[lvl] < min || writing) return;
    writing = true;
    try {
      let line: string;
      try {
        line = format1(lvl, msg, { ...bound, ...fields });
      } catch {
        // A field that cannot be serialised (a cycle, a BigInt) costs the fields, not the event.
        line = format1(lvl, msg, { ...bound, log_error: 'fields could not be serialised' });
      }
      // A log line is one line, whatever a device or API sent us.
      line = line.replace(/[\r\n]+/g, ' ');
      write(redactor ? redactor.scrub(line) : line);
    } catch {
      // The writer failed; there is nowhere left to say so.
    } finally {
      writing = false;
    }
  };

  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (fields) => createLogger(opts, { ...bound, ...fields }),
    isLevelEnabled: (l) => LEVEL_RANK[l] >= min,
  };
}

/** A logger that drops everything (library default). */
export const nopLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return nopLogger;
  },
  isLevelEnabled() {
    return false;
  },
};

/**
 * Logs a condition once until it clears: bad input from a device or the API is counted every
 * time but logged only on the transition, so a broken device cannot flood the log.
 */
export class OnceLogger {
  private readonly _active = new Map<string, string>();
  private readonly _logger: Logger;
  constructor(logger: Logger) {
    this._logger = logger;
  }
  /** Logs at warn the first time `key` fails with a new `kind`; returns true when it logged. */
  fail(key: string, kind: string, msg: string, fields?: LogFields): boolean {
    if (this._active.get(key) === kind) return false;
    this._active.set(key, kind);
    this._logger.warn(msg, fields);
    return true;
  }
  /** Clears `key`; logs recovery at info when it had failed before. */
  ok(key: string, msg?: string, fields?: LogFields): void {
    if (this._active.delete(key) && msg) this._logger.info(msg, fields);
  }
  forgetExcept(keys: Set<string>): void {
    for (const k of this._active.keys()) if (!keys.has(k)) this._active.delete(k);
  }
}
