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
 *
 * Before sonic-boom, the lines of one event-loop turn are gathered
 * (`TurnBatch`) and handed over as one string at the end of the turn (or
 * at LINE_BATCH_CHARS): sonic-boom measures the UTF-8 length of what it
 * holds on every write, so line by line it cost 4.6 µs a line and in
 * batches 1.7-2.0 (200,000 lines of 900 bytes to /dev/null, 64 a turn).
 * Every line of a logger goes through its batch, so their order is kept;
 * `flush` and the exit hook hand over what is gathered before sonic-boom
 * writes.
 */
import { openSync } from 'node:fs';
import pino, { type Logger, type LevelWithSilent } from 'pino';

/** Bytes gathered before a write (sonic-boom's minLength; must stay below LOG_MAX_WRITE_BYTES). */
export const LOG_BUFFER_BYTES = 4096;
/**
 * Most bytes one write call takes (sonic-boom's maxWrite, 16 KiB by default).
 * sonic-boom writes one chunk per completed write, so with 16 KiB a saturated
 * server (~8,500 decision lines a second of ~860 bytes, each completion
 * waiting for a loop turn) fell behind: measured with `bench/rss-phases.ts`,
 * 10 s of the benchmark's max repeated load left ~45 MB of lines held, V8's
 * heap 144 MB and RSS 264 MB right after. A larger chunk of *strings* costs
 * CPU instead: sonic-boom re-measures the UTF-8 length of the string it
 * appends to on every write (128 KiB: the bench's repeated max fell from
 * 8,890 to 6,190 req/s). So the destination takes Buffers (contentMode
 * 'buffer': appends are O(1), one concat per write; the turn's lines are
 * encoded once, as fs.write would have), and a write may carry 1 MiB.
 */
export const LOG_MAX_WRITE_BYTES = 1024 * 1024;
/**
 * Most bytes held for the destination. A destination that stops taking lines
 * (stdout piped to a stalled log shipper, a full disk) must not grow the
 * server until it is killed: past this, lines are dropped and counted
 * (`droppedLogLines`, exported as authz_log_lines_dropped_total).
 */
export const LOG_MAX_HELD_BYTES = 64 * 1024 * 1024;

let droppedLines = 0;
/** Lines dropped because the destination held LOG_MAX_HELD_BYTES (for the metric). */
export function droppedLogLines(): number {
  return droppedLines;
}
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

/** Characters of gathered lines that are handed to sonic-boom at once, without waiting for the end of the turn. */
export const LINE_BATCH_CHARS = 8192;

type Destination = ReturnType<typeof pino.destination>;
/** sonic-boom in contentMode 'buffer' (its typings know only strings). */
type BufferSink = { write(chunk: Buffer): boolean };

/** The lines of one event-loop turn, handed to the destination together (see the module comment). */
class TurnBatch {
  private lines: string[] = [];
  private chars = 0;
  private scheduled = false;
  private readonly handOverNow = (): void => this.handOver();

  constructor(private readonly destination: Destination) {}

  write(line: string): boolean {
    this.lines.push(line);
    this.chars += line.length;
    if (this.chars >= LINE_BATCH_CHARS) this.handOver();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.handOverNow);
    }
    return true;
  }

  handOver(): void {
    this.scheduled = false;
    if (this.lines.length === 0) return;
    const text = this.lines.length === 1 ? this.lines[0] : this.lines.join('');
    this.lines = [];
    this.chars = 0;
    // Lines written after the destination closed (a late check during shutdown) have nowhere to go.
    // A Buffer: the destination is in contentMode 'buffer' (see LOG_MAX_WRITE_BYTES).
    if (!(this.destination as unknown as BoomState).destroyed)
      (this.destination as unknown as BufferSink).write(Buffer.from(text, 'utf8'));
  }

  /** pino's `logger.flush(cb)`. */
  flush(cb?: (err?: Error) => void): void {
    this.handOver();
    this.destination.flush(cb);
  }

  flushSync(): void {
    this.handOver();
    this.destination.flushSync();
  }
}

/** Batches of live loggers, handed over at exit before pino's own exit hook writes sonic-boom out synchronously. */
const batches = new Set<TurnBatch>();
// Registered when this module loads, before any destination exists, so it runs before the hook pino registers per destination.
process.on('exit', () => {
  for (const b of batches) b.handOver();
});

export function createLogger(options: LoggerOptions): Logger {
  const sync = options.sync ?? false;
  // A file is opened here, synchronously: lines logged before an asynchronous open finished could not be flushed
  // by an exit in that window, and a path that cannot be opened stops start-up with one line naming it.
  const dest =
    typeof options.destination === 'string' ? openSync(options.destination, 'a') : (options.destination ?? 1);
  const destination = pino.destination(
    sync
      ? { dest, sync }
      : {
          dest,
          sync,
          minLength: LOG_BUFFER_BYTES,
          maxWrite: LOG_MAX_WRITE_BYTES,
          maxLength: LOG_MAX_HELD_BYTES,
          contentMode: 'buffer' as const,
        },
  );
  if (!sync) {
    // A dropped write is a turn's batch of lines; count the lines in it.
    destination.on('drop', (bytes: Buffer) => {
      droppedLines += countLines(bytes);
    });
    const state = destination as unknown as BoomState;
    const timer = setInterval(() => {
      // flush() with nothing held would still issue an empty write.
      if (!state.destroyed && (state._len ?? 1) > 0) destination.flush();
    }, LOG_FLUSH_MS);
    timer.unref();
    destination.on('close', () => clearInterval(timer));
  }
  const batch = sync ? undefined : new TurnBatch(destination);
  if (batch) {
    batches.add(batch);
    destination.on('close', () => batches.delete(batch));
  }
  const logger = pino(
    {
      level: options.level,
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    batch ?? destination,
  );
  ownLoggers.set(logger, batch ?? destination);
  return logger;
}

function countLines(bytes: Buffer): number {
  let n = 0;
  for (let i = bytes.indexOf(NEWLINE); i !== -1; i = bytes.indexOf(NEWLINE, i + 1)) n++;
  return n;
}
const NEWLINE = 0x0a;

/** The stream each logger createLogger made writes to (its turn batch, or sonic-boom when synchronous): where `infoLineWriter` writes. */
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
