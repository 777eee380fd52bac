/**
 * pino logger writing asynchronously (sonic-boom with sync:false), so a
 * decision never waits for the disk or stdout. Request headers appear only in
 * decision lines, and DecisionLog redacts them itself (the list follows the
 * config, see redaction.ts) while it copies them, so no pino `redact` paths:
 * with the 10 built-in paths they made a decision line 88-116 µs instead of
 * 53-68 µs in a micro-benchmark (sync writes to /dev/null, 2 shared cores, load ~20).
 *
 * Lines are batched: sonic-boom holds them until LOG_BUFFER_BYTES have
 * gathered (one write call for ~10 decision lines instead of one each), and a
 * timer writes what is held every LOG_FLUSH_MS, so a quiet server's lines still
 * appear promptly. Nothing held is lost at the end: `flushLogger` (shutdown,
 * SIGTERM/SIGINT through `authz serve`) writes it out, and pino registers a
 * synchronous flush on process `exit` for asynchronous destinations, which
 * covers every exit that runs JavaScript (process.exit, a fatal error
 * reported by the CLI, the end of the event loop). Only a kill -9 or a V8
 * abort loses up to LOG_FLUSH_MS of lines.
 */
import { openSync } from 'node:fs';
import pino, { type Logger, type LevelWithSilent } from 'pino';

/** Bytes gathered before a write (sonic-boom's minLength; must stay below its 16 KiB maxWrite). */
export const LOG_BUFFER_BYTES = 4096;
/** Longest a line waits in the buffer on a quiet server. */
export const LOG_FLUSH_MS = 100;

export interface LoggerOptions {
  level: LevelWithSilent;
  /** Defaults to stdout (fd 1). Tests pass a file path to read the decision log back. */
  destination?: string | number;
  /** Write synchronously (only for short-lived CLI commands, whose lines must not be lost at exit). */
  sync?: boolean;
}

/** sonic-boom's state not in its typings: `_len` is the count of bytes held, `destroyed` set once closed. */
type BoomState = { _len?: number; destroyed?: boolean };

export function createLogger(options: LoggerOptions): Logger {
  const sync = options.sync ?? false;
  // A file is opened here, synchronously: lines logged before an asynchronous open finished could not be flushed
  // by an exit in that window, and a path that cannot be opened stops start-up with one line naming it.
  const dest =
    typeof options.destination === 'string' ? openSync(options.destination, 'a') : (options.destination ?? 1);
  const destination = pino.destination({ dest, sync, minLength: sync ? 0 : LOG_BUFFER_BYTES });
  if (!sync) {
    const state = destination as unknown as BoomState;
    const timer = setInterval(() => {
      // flush() with nothing held would still issue an empty write.
      if (!state.destroyed && (state._len ?? 1) > 0) destination.flush();
    }, LOG_FLUSH_MS);
    timer.unref();
    destination.on('close', () => clearInterval(timer));
  }
  const logger = pino(
    {
      level: options.level,
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
  ownLoggers.set(logger, destination);
  return logger;
}

/** The destination and level label of each logger createLogger made: what `infoLineWriter` writes to directly. */
const ownLoggers = new WeakMap<Logger, { write(line: string): unknown }>();

/** The ISO time of the last line, per millisecond: at thousands of lines a second most lines share one. */
let isoMs = Number.NaN;
let isoText = '';
function isoTimeNow(): string {
  const now = Date.now();
  if (now !== isoMs) {
    isoMs = now;
    isoText = new Date(now).toISOString();
  }
  return isoText;
}

/**
 * A writer of info lines for a hot path (the decision log): the same line
 * `logger.info(fields)` writes, `{"level":"info","time":"…",<fields in their
 * order>}`, built with one native `JSON.stringify` instead of pino's
 * field-by-field serializer (what a decision line cost most of its time in).
 * For loggers made by createLogger only (their options are known: no base,
 * ISO time, level label, no serializers or hooks on these fields); any
 * other logger, and any fields JSON.stringify refuses (a cycle, a bigint),
 * go through `logger.info` as before. The caller checks the level.
 */
export function infoLineWriter(logger: Logger): (fields: Record<string, unknown>) => void {
  const destination = ownLoggers.get(logger);
  if (!destination) return (fields) => logger.info(fields);
  return (fields) => {
    let json: string;
    try {
      json = JSON.stringify(fields);
    } catch {
      logger.info(fields);
      return;
    }
    if (json.length <= 2) {
      logger.info(fields);
      return;
    }
    destination.write(`{"level":"info","time":"${isoTimeNow()}",${json.slice(1)}\n`);
  };
}

/** Flush buffered lines (at shutdown). */
export function flushLogger(logger: Logger): Promise<void> {
  return new Promise((resolve) => logger.flush(() => resolve()));
}
