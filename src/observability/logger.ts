/**
 * pino logger writing asynchronously (sonic-boom with sync:false), so a
 * decision never waits for stdout. The decision log redacts headers itself
 * (following the config, see redaction.ts); the built-in credential headers
 * are also redacted by path here, for any other line that logs `headers`.
 */
import pino, { type Logger, type LevelWithSilent } from 'pino';
import { DEFAULT_REDACTED_HEADERS, REDACTED } from './redaction.js';

export const REDACT_PATHS = DEFAULT_REDACTED_HEADERS.map((h) => `headers["${h}"]`);

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
      redact: { paths: REDACT_PATHS, censor: REDACTED },
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
