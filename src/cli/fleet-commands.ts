/**
 * `authz fleet status`: which live servers run which version, against the
 * store's pointer; and the wait behind `authz bundle activate V --wait`.
 * Both read the heartbeats servers started with --notify put in NATS.
 */
import type { BundlePointer, BundleStore } from '../bundle/store/bundle-store.js';
import {
  HEARTBEAT_INTERVAL_MS,
  HEARTBEAT_TTL_MS,
  fleetRows,
  formatAge,
  formatFleetTable,
  openFleetBucket,
  readFleet,
  stragglers,
  type FleetRow,
} from '../bundle/notify/fleet-status.js';
import {
  connectOnce,
  describeServers,
  NotifyError,
  openBucket,
  type NotifySettings,
} from '../bundle/notify/notify-connection.js';
import { parseDurationMs } from '../config/duration.js';
import type { Command } from './command-framework.js';
import { UsageError } from './command-framework.js';
import { STORE_DETAILS, STORE_OPTIONS, storeFromFlags, type OpenedStore } from './store-options.js';
import { BundleStoreError } from '../bundle/store/bundle-store.js';

/** `--wait` alone waits this long. */
export const DEFAULT_WAIT = '30s';
/** How often --wait re-reads the heartbeats (servers beat at once on a swap). */
const WAIT_POLL_MS = 100;

async function currentPointer(store: BundleStore): Promise<BundlePointer | undefined> {
  const read = await store.getPointer();
  return read.kind === 'found' ? read.pointer : undefined;
}

function requireNotify(opened: OpenedStore, what: string): NotifySettings {
  if (!opened.notify)
    throw new UsageError(
      `${what} needs --notify nats://HOST:4222 (or AUTHZ_NOTIFY): servers report their versions over NATS`,
    );
  return opened.notify;
}

export const fleetStatusCommand: Command = {
  path: ['fleet', 'status'],
  summary: 'list the live servers (reporting over NATS) with their versions, lag and push state; stragglers marked "!"',
  usage: 'fleet status [--json] --notify nats://HOST:4222 <store flags>',
  options: { json: { type: 'boolean', description: 'Print JSON' }, ...STORE_OPTIONS },
  details: `Servers started with --notify report every ${HEARTBEAT_INTERVAL_MS / 1000}s and at once on every swap; one silent for ${HEARTBEAT_TTL_MS / 1000}s drops out.\n${STORE_DETAILS}`,
  async run(values) {
    let opened: OpenedStore | undefined;
    try {
      opened = storeFromFlags(values);
      const settings = requireNotify(opened, 'fleet status');
      const pointer = await currentPointer(opened.store);
      const nc = await connectOnce(settings, 'authz-cli');
      let rows: FleetRow[];
      try {
        const kv = await openFleetBucket((b, o) => openBucket(nc, b, o));
        rows = fleetRows(await readFleet(kv, opened.store.location), pointer, Date.now());
      } finally {
        await nc.close().catch(() => undefined);
      }
      if (values.json) {
        const servers = rows.map((r) => ({
          ...r.beat,
          state: r.state,
          lag_ms: r.lagMs,
          last_sync_age_ms: r.syncAgeMs,
        }));
        process.stdout.write(
          JSON.stringify(
            {
              bundle: opened.store.location.bundle,
              pointer: pointer ?? null,
              servers,
              stragglers: stragglers(rows).map((r) => r.beat.server_id),
            },
            null,
            2,
          ) + '\n',
        );
        return 0;
      }
      if (rows.length === 0) {
        process.stdout.write(
          `no live server reports to ${describeServers(settings)} for ${opened.store.location.bundle}${pointer ? ` (store pointer: ${pointer.version})` : ''}\n`,
        );
        return 0;
      }
      process.stdout.write(formatFleetTable(rows, pointer) + '\n');
      return 0;
    } catch (err) {
      if (err instanceof UsageError) throw err;
      if (err instanceof BundleStoreError || err instanceof NotifyError || isNatsError(err)) {
        process.stderr.write(`authz fleet status: ${(err as Error).message}\n`);
        return 1;
      }
      throw err;
    } finally {
      opened?.s3.destroy();
    }
  },
};

function isNatsError(err: unknown): boolean {
  return (err as { name?: string })?.name === 'NatsError' || typeof (err as { code?: unknown })?.code === 'string';
}

/** "30s" → ms; a usage error naming the flag otherwise. */
export function parseWait(raw: string): number {
  const ms = parseDurationMs(raw);
  if (ms === undefined || ms <= 0)
    throw new UsageError(`--wait "${raw}" must be a duration such as 30s or 2m (bare --wait waits ${DEFAULT_WAIT})`);
  return ms;
}

/**
 * Wait until every live server reports `pointer`'s version (and sha256).
 * Prints the outcome; 0 when they all do, 1 on timeout (stragglers listed)
 * or when no server reports at all (nothing confirms the change).
 */
export async function waitForFleet(opened: OpenedStore, pointer: BundlePointer, timeoutMs: number): Promise<number> {
  const settings = requireNotify(opened, '--wait');
  const started = Date.now();
  let nc;
  try {
    nc = await connectOnce(settings, 'authz-cli');
  } catch (err) {
    process.stderr.write(
      `--wait: cannot reach ${describeServers(settings)}: ${(err as Error).message}; cannot confirm which servers run ${pointer.version}\n`,
    );
    return 1;
  }
  try {
    const kv = await openFleetBucket((b, o) => openBucket(nc, b, o));
    let rows: FleetRow[] = [];
    for (;;) {
      rows = fleetRows(await readFleet(kv, opened.store.location), pointer, Date.now());
      if (rows.length > 0 && stragglers(rows).length === 0) {
        process.stdout.write(
          `all ${rows.length} live server(s) run ${pointer.version} (confirmed after waiting ${formatAge(Date.now() - started)})\n`,
        );
        return 0;
      }
      if (Date.now() - started >= timeoutMs) break;
      await new Promise((r) => setTimeout(r, WAIT_POLL_MS));
    }
    if (rows.length === 0) {
      process.stderr.write(
        `--wait: no live server reported to ${describeServers(settings)} within ${formatAge(timeoutMs)}; nothing confirms ${pointer.version} is enforced\n`,
      );
      return 1;
    }
    const late = stragglers(rows);
    process.stderr.write(
      `--wait: after ${formatAge(timeoutMs)}, ${late.length} of ${rows.length} live server(s) do not run ${pointer.version}:\n` +
        late
          .map(
            (r) =>
              `  ${r.beat.server_id} (${r.beat.host} pid ${r.beat.pid}): ${r.beat.version ?? '(none)'}, ${r.state}${r.beat.last_error ? `, last error: ${r.beat.last_error}` : ''}`,
          )
          .join('\n') +
        '\n',
    );
    return 1;
  } catch (err) {
    process.stderr.write(`--wait: ${(err as Error).message}\n`);
    return 1;
  } finally {
    await nc.close().catch(() => undefined);
  }
}
