/**
 * A log destination that stops taking lines (here a real FIFO whose reader
 * never reads, as stdout piped to a stalled log shipper) must not grow the
 * server without bound: past LOG_MAX_HELD_BYTES lines are dropped and
 * counted in authz_log_lines_dropped_total, and logging never throws.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createLogger, droppedLogLines, LOG_MAX_HELD_BYTES } from '../../src/observability/logger.js';
import { AuthzMetrics } from '../../src/observability/metrics.js';

describe('a stalled log destination', () => {
  it('holds at most LOG_MAX_HELD_BYTES, drops the rest and counts the dropped lines', async () => {
    const fifo = path.join(mkdtempSync(path.join(tmpdir(), 'authz-log-fifo-')), 'log');
    execFileSync('mkfifo', [fifo]);
    // A reader that never reads: the pipe's buffer fills, then every write is EAGAIN.
    const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    const writer = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
    const logger = createLogger({ level: 'info', destination: writer });
    const line = 'x'.repeat(1000);
    const lines = Math.ceil((LOG_MAX_HELD_BYTES * 1.5) / line.length);
    const before = droppedLogLines();
    for (let i = 0; i < lines; i++) {
      logger.info({ i, line }, 'decision');
      if (i % 500 === 0) await new Promise((r) => setImmediate(r));
    }
    await new Promise((r) => setImmediate(r));
    const dropped = droppedLogLines() - before;
    // About a third of the lines did not fit; what fit is at most the bound.
    expect(dropped).toBeGreaterThan(lines / 4);
    expect(dropped).toBeLessThan(lines / 2);

    const metrics = new AuthzMetrics(false);
    const text = await metrics.registry.metrics();
    const exported = Number(/^authz_log_lines_dropped_total (\d+)$/m.exec(text)?.[1]);
    expect(exported).toBe(droppedLogLines());
    closeSync(reader);
  }, 60_000);
});
