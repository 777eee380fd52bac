/**
 * pino logger writing asynchronously (sonic-boom with sync:false), so a
 * decision never waits for stdout. Request headers appear only in decision
 * lines, and DecisionLog redacts them itself (the list follows the config,
 * see redaction.ts) while it copies them, so no pino `redact` paths: with the
 * 10 built-in paths they made a decision line 88-116 µs instead of 53-68 µs in
 * a micro-benchmark (sync writes to /dev/null, 2 shared cores, load ~20).
 */
import pino, { type Logger, type LevelWithSilent } from 'pino';

export interface LoggerOptions {
  level: LevelWithSilent;
  /** Defaults to stdout (fd 1). Tests pass a file path to read the decision log back. */
  destination?: string | number;
  /** Write synchronously (only for short-lived CLI commands, whose lines must not be lost at exit). */
  sync?: boolean;
}

export function createLogger(options: LoggerOptions): Logger {
  const destination = pino.destination({ dest: options.destination ?? 1, sync: options.sync ?? false });
  return pino(
    {
      level: options.level,
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}

/** Flush buffered lines (at shutdown). */
export function flushLogger(logger: Logger): Promise<void> {
  return new Promise((resolve) => logger.flush(() => resolve()));
}
