/**
 * The process never dies of a request. An exception or rejection no handler
 * caught is a bug; it is logged with its stack and counted
 * (authz_process_faults_total), and the process keeps serving: the state a
 * request can touch (the active policy set, caches, rate-limit buckets) is
 * replaced whole or per entry, never left half-updated by a throw, so the next
 * request is answered as before. Without these listeners Node exits on the
 * first one, taking the gRPC port (and with --cores, every worker) with it.
 * Alert on the counter: each increment is a bug to fix.
 */
import type { Logger } from 'pino';

export type ProcessFaultKind = 'uncaught_exception' | 'unhandled_rejection';

/** Installs the listeners; returns a function that removes them (tests run several servers in one process). */
export function installProcessFaultHandlers(logger: Logger, onFault: (kind: ProcessFaultKind) => void): () => void {
  const onRejection = (reason: unknown): void => {
    logger.error({ err: reason }, 'unhandled promise rejection; the server keeps serving');
    onFault('unhandled_rejection');
  };
  const onException = (err: Error): void => {
    logger.error({ err }, 'uncaught exception; the server keeps serving');
    onFault('uncaught_exception');
  };
  process.on('unhandledRejection', onRejection);
  process.on('uncaughtException', onException);
  return () => {
    process.off('unhandledRejection', onRejection);
    process.off('uncaughtException', onException);
  };
}
