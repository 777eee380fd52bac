/**
 * What every benchmark server process shares: tell the parent its port, answer
 * its questions over IPC (memory, event-loop stalls), exit when told.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';

export interface ChildStats {
  rssBytes: number;
  heapUsedBytes: number;
  /** Longest event-loop delay since the last reset (1 ms timer resolution). */
  stallMaxMs: number;
  /** 99th percentile of the event-loop delay since the last reset. */
  stallP99Ms: number;
}

export type ParentMessage = { type: 'stats'; reset?: boolean } | { type: 'exit' };
export type ChildMessage = { type: 'ready'; port: number; adminPort?: number; info?: Record<string, unknown> } | ({ type: 'stats' } & ChildStats);

export function serveChild(ready: { port: number; adminPort?: number; info?: Record<string, unknown> }, close: () => Promise<void>): void {
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  process.on('message', (m: ParentMessage) => {
    if (m.type === 'stats') {
      const mem = process.memoryUsage();
      const reply: ChildMessage = { type: 'stats', rssBytes: mem.rss, heapUsedBytes: mem.heapUsed, stallMaxMs: delay.max / 1e6, stallP99Ms: delay.percentile(99) / 1e6 };
      if (m.reset) delay.reset();
      process.send!(reply);
    } else if (m.type === 'exit') {
      void close().then(() => process.exit(0));
    }
  });
  process.on('disconnect', () => process.exit(0));
  process.send!({ type: 'ready', ...ready } satisfies ChildMessage);
}
