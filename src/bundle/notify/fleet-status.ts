/**
 * Fleet status: every server puts a heartbeat under its own key in a
 * JetStream key-value bucket whose entries expire (the bucket's max age), so
 * the live fleet is whatever is in the bucket. A server writes one at once on
 * every activation or refusal, and every HEARTBEAT_INTERVAL_MS otherwise.
 *
 * Keys are `<location id>.<server id>`: one NATS can carry several bundles'
 * fleets, and `authz fleet status` lists only its own.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { KV } from 'nats';
import type { BundlePointer, StoreLocation } from '../store/bundle-store.js';
import { locationId } from './pointer-channel.js';

export const FLEET_BUCKET = 'authz_fleet';
export const HEARTBEAT_INTERVAL_MS = 5_000;
/** Three missed heartbeats and a server is gone from the fleet. */
export const HEARTBEAT_TTL_MS = 3 * HEARTBEAT_INTERVAL_MS;

export const heartbeatSchema = z.object({
  server_id: z.string(),
  host: z.string(),
  pid: z.number(),
  store: z.string(),
  version: z.string().nullable(),
  sha256: z.string().nullable(),
  shadow_version: z.string().nullable(),
  policies: z.number(),
  ready: z.boolean(),
  /** When the store last confirmed the version (ISO), null if never. */
  last_sync: z.string().nullable(),
  last_error: z.string().nullable(),
  uptime_s: z.number(),
  push: z.object({ connected: z.boolean(), last_message_at: z.string().nullable() }),
  at: z.string(),
});

export type Heartbeat = z.infer<typeof heartbeatSchema>;

/** "host-pid-xxxx": unique per process even with several servers in one process (tests) or one host. */
export function newServerId(): string {
  const host =
    hostname()
      .replace(/[^A-Za-z0-9_-]/g, '-')
      .slice(0, 64) || 'host';
  return `${host}-${process.pid}-${randomBytes(3).toString('hex')}`;
}

export function heartbeatKey(location: StoreLocation, serverId: string): string {
  return `${locationId(location)}.${serverId}`;
}

export function openFleetBucket(kvOf: (bucket: string, opts: { ttl: number }) => Promise<KV>): Promise<KV> {
  return kvOf(FLEET_BUCKET, { ttl: HEARTBEAT_TTL_MS });
}

/** Every live heartbeat of this store location's fleet. Unreadable entries are left out, not fatal. */
export async function readFleet(kv: KV, location: StoreLocation): Promise<Heartbeat[]> {
  const prefix = `${locationId(location)}.`;
  // A Set: the listing is an ordered consumer that also yields puts made while it runs, so a key can come twice.
  const keys = new Set<string>();
  for await (const k of await kv.keys(`${prefix}>`)) keys.add(k);
  const beats: Heartbeat[] = [];
  for (const key of keys) {
    const e = await kv.get(key);
    if (e?.operation !== 'PUT') continue;
    try {
      const parsed = heartbeatSchema.safeParse(JSON.parse(Buffer.from(e.value).toString('utf8')));
      if (parsed.success) beats.push(parsed.data);
    } catch {
      // not ours; skip
    }
  }
  return beats.sort((a, b) => a.server_id.localeCompare(b.server_id));
}

export type ServerState = 'current' | 'behind' | 'not-ready';

export interface FleetRow {
  beat: Heartbeat;
  state: ServerState;
  /** Behind: ms since the version it should run was activated. */
  lagMs: number | null;
  /** ms since the store last confirmed its version. */
  syncAgeMs: number | null;
}

/** Each server against the store's pointer: current, behind (a straggler) or not ready. Pure. */
export function fleetRows(beats: Heartbeat[], pointer: BundlePointer | undefined, now: number): FleetRow[] {
  return beats.map((beat) => {
    const current = pointer !== undefined && beat.version === pointer.version && beat.sha256 === pointer.sha256;
    const state: ServerState = !beat.ready ? 'not-ready' : pointer === undefined || current ? 'current' : 'behind';
    const activatedAt = pointer ? Date.parse(pointer.activated_at) : NaN;
    return {
      beat,
      state,
      lagMs: current || !pointer || Number.isNaN(activatedAt) ? null : Math.max(0, now - activatedAt),
      syncAgeMs: beat.last_sync ? Math.max(0, now - Date.parse(beat.last_sync)) : null,
    };
  });
}

/** The servers that do not (yet) run `pointer`'s version: what `--wait` waits for. */
export function stragglers(rows: FleetRow[]): FleetRow[] {
  return rows.filter((r) => r.state !== 'current');
}

/** 1234 → "1.2s", 75000 → "1m15s". */
export function formatAge(ms: number | null): string {
  if (ms === null) return '-';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const m = Math.floor(ms / 60_000);
  if (m < 60) return `${m}m${Math.round((ms % 60_000) / 1000)}s`;
  return `${Math.floor(m / 60)}h${m % 60}m`;
}

/** The table `authz fleet status` prints; stragglers are marked with "!". */
export function formatFleetTable(rows: FleetRow[], pointer: BundlePointer | undefined): string {
  const table = [
    [
      '',
      'SERVER',
      'HOST',
      'PID',
      'VERSION',
      'SHADOW',
      'POLICIES',
      'STATE',
      'LAG',
      'LAST SYNC',
      'PUSH',
      'UPTIME',
      'LAST ERROR',
    ],
  ];
  for (const r of rows) {
    const b = r.beat;
    table.push([
      r.state === 'current' ? '' : '!',
      b.server_id,
      b.host,
      String(b.pid),
      b.version ?? '(none)',
      b.shadow_version ?? '-',
      String(b.policies),
      r.state,
      formatAge(r.lagMs),
      r.syncAgeMs === null ? 'never' : `${formatAge(r.syncAgeMs)} ago`,
      b.push.connected ? 'connected' : 'down',
      formatAge(b.uptime_s * 1000),
      b.last_error ? b.last_error.slice(0, 80) : '',
    ]);
  }
  const widths = table[0].map((_, i) => Math.max(...table.map((row) => row[i].length)));
  const lines = table.map((row) =>
    row
      .map((c, i) => c.padEnd(widths[i]))
      .join('  ')
      .trimEnd(),
  );
  const behind = stragglers(rows).length;
  lines.push(
    '',
    pointer
      ? `store pointer: ${pointer.version} (activated ${pointer.activated_at}); ${rows.length} live server(s), ${rows.length - behind} current, ${behind} straggling`
      : `no active version in the store; ${rows.length} live server(s)`,
  );
  return lines.join('\n');
}
