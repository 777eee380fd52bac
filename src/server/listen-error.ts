/**
 * A port that cannot be listened on (taken, not on this machine, not
 * permitted) is an operator's mistake: one line naming the listener and the
 * address, not grpc-js's "No address added out of total 1 resolved".
 */
import * as grpc from '@grpc/grpc-js';

export class ListenError extends Error {}

const REASONS: Record<string, string> = {
  EADDRINUSE: 'address already in use (another process listens there)',
  EADDRNOTAVAIL: 'address not available on this machine',
  EACCES: 'permission denied (ports below 1024 need privileges)',
};

/** `err` from binding `what` (e.g. "gRPC") to `address`, as a ListenError naming both. */
export function listenError(what: string, address: string, err: unknown): ListenError {
  const text = err instanceof Error ? err.message : String(err);
  const code = (err as NodeJS.ErrnoException)?.code ?? /\b(E[A-Z]+)\b/.exec(text)?.[1];
  const reason = (code && REASONS[code]) ?? text;
  return new ListenError(`cannot listen for ${what} on ${address}: ${reason}`);
}

/**
 * grpc-js logs a failed bind itself ("E No address added ...") before it
 * rejects; the rejection is reported as a ListenError, so that line is only
 * noise. Every other grpc-js error line still goes to stderr.
 */
export function dropGrpcBindNoise(): void {
  grpc.setLogger({
    error: (...args: unknown[]) => {
      const line = args.map(String).join(' ');
      if (!/No address added out of total/.test(line)) console.error(line);
    },
    warn: (...args: unknown[]) => console.warn(...args),
    info: (...args: unknown[]) => console.info(...args),
    debug: (...args: unknown[]) => console.debug(...args),
  } as unknown as Console);
}
