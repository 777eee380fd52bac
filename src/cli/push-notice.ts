/**
 * After a command has written the pointer to the store: put it on the NATS
 * push channel too (when one is configured), and say how that went. A push
 * that fails changes nothing about the change itself, which is in the store:
 * the servers converge by polling, and the command says so (exit code unchanged).
 */
import type { BundlePointer } from '../bundle/store/bundle-store.js';
import { describeServers } from '../bundle/notify/notify-connection.js';
import { publishPointer } from '../bundle/notify/pointer-channel.js';
import type { OpenedStore } from './store-options.js';

export async function announcePointer(opened: OpenedStore, pointer: BundlePointer): Promise<boolean> {
  if (!opened.notify) return false;
  const where = describeServers(opened.notify);
  try {
    await publishPointer(opened.notify, opened.store.location, pointer);
  } catch (err) {
    process.stderr.write(
      `push to ${where} failed: ${(err as Error).message}; the change is in the store, servers converge by polling within their --poll-interval\n`,
    );
    return false;
  }
  process.stdout.write(`pushed to ${where}: connected servers re-read the pointer now\n`);
  return true;
}
