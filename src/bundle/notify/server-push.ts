/**
 * A server's side of push, wired to its S3 syncer: a NATS connection kept in
 * the background, a watch on the bundle's pointer key whose every message
 * nudges the syncer (which then reads the store, as a poll would), and a
 * heartbeat into the fleet bucket.
 *
 * On every (re)connect the watch is set up again and the syncer nudged, so a
 * server that was cut off re-reads the store at once; the poll keeps running
 * underneath at its own interval whatever NATS does.
 */
import type { KV, NatsConnection } from 'nats';
import type { Logger } from 'pino';
import type { BundlePointer, StoreLocation } from '../store/bundle-store.js';
import type { AuthzMetrics } from '../../observability/metrics.js';
import {
  FLEET_BUCKET,
  HEARTBEAT_INTERVAL_MS,
  HEARTBEAT_TTL_MS,
  heartbeatKey,
  newServerId,
  readFleet,
  type Heartbeat,
} from './fleet-status.js';
import { describeServers, NotifyConnection, openBucket, type NotifySettings } from './notify-connection.js';
import { locationUrl, PointerWatch } from './pointer-channel.js';
import { hostname } from 'node:os';

/** What the heartbeat says about this server, read fresh for each one. */
export type ServerFacts = Pick<
  Heartbeat,
  'version' | 'sha256' | 'shadow_version' | 'policies' | 'ready' | 'last_sync' | 'last_error'
>;

export interface ServerPushOptions {
  settings: NotifySettings;
  location: StoreLocation;
  logger: Logger;
  metrics: AuthzMetrics;
  /** Read the store now (S3BundleSyncer.nudge), with the pointer the message named, if any. */
  nudge: (hint?: BundlePointer) => void;
  facts: () => ServerFacts;
  /** Live ready servers of this bundle's fleet (this one included), read after each heartbeat: rate limit shares. */
  onFleetSize?: (servers: number) => void;
}

export class ServerPush {
  readonly serverId = newServerId();
  private readonly connection: NotifyConnection;
  private readonly watch: PointerWatch;
  private readonly startedAt = Date.now();
  private fleet: KV | undefined;
  private fleetFor: NatsConnection | undefined;
  private beatTimer: NodeJS.Timeout | undefined;
  private beating: Promise<void> | undefined;
  private beatAgain = false;
  private lastBeatError: string | undefined;
  private stopped = false;

  constructor(private readonly o: ServerPushOptions) {
    this.connection = new NotifyConnection(o.settings, `authz-server ${this.serverId}`, o.logger);
    this.watch = new PointerWatch({
      location: o.location,
      logger: o.logger,
      settings: o.settings,
      onHint: (pointer) => o.nudge(pointer),
      count: (result) => o.metrics.pushMessages.inc({ result }),
    });
    o.metrics.trackPush(() => ({
      connected: this.connection.state === 'connected',
      lastMessageAt: this.watch.lastMessageAt,
    }));
    for (const result of ['hint', 'invalid']) o.metrics.pushMessages.inc({ result }, 0);
    this.connection.onUp((nc) => {
      this.watch.watch(nc);
      this.fleet = undefined;
      this.fleetFor = nc;
      this.heartbeat();
    });
  }

  start(): void {
    this.connection.start();
    this.beatTimer = setInterval(() => this.heartbeat(), HEARTBEAT_INTERVAL_MS);
    this.beatTimer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.beatTimer) clearInterval(this.beatTimer);
    this.watch.stop();
    await this.beating;
    // Leave the fleet at once rather than when the entry expires.
    if (this.fleet && this.connection.state === 'connected') {
      await this.fleet.delete(heartbeatKey(this.o.location, this.serverId)).catch(() => undefined);
    }
    await this.connection.stop();
  }

  /** Put a heartbeat now (also called on every activation or refusal). One at a time; calls meanwhile coalesce into one more. */
  heartbeat(): void {
    if (this.stopped) return;
    if (this.beating) {
      this.beatAgain = true;
      return;
    }
    this.beating = this.putHeartbeat().finally(() => {
      this.beating = undefined;
      if (this.beatAgain && !this.stopped) {
        this.beatAgain = false;
        this.heartbeat();
      }
    });
  }

  describe(): Record<string, unknown> {
    return {
      kind: 'nats',
      servers: describeServers(this.o.settings),
      state: this.connection.state,
      server_id: this.serverId,
      messages: this.watch.messages,
      invalid_messages: this.watch.invalidMessages,
      last_message_at: this.watch.lastMessageAt?.toISOString() ?? null,
      last_error: this.connection.lastError ?? this.watch.lastProblem ?? this.lastBeatError ?? null,
    };
  }

  private async putHeartbeat(): Promise<void> {
    const nc = this.connection.nc;
    if (!nc || this.connection.state !== 'connected') return;
    try {
      if (!this.fleet || this.fleetFor !== nc) {
        this.fleet = await openBucket(nc, FLEET_BUCKET, { ttl: HEARTBEAT_TTL_MS });
        this.fleetFor = nc;
      }
      const beat: Heartbeat = {
        server_id: this.serverId,
        host: hostname(),
        pid: process.pid,
        store: locationUrl(this.o.location),
        ...this.o.facts(),
        uptime_s: Math.round((Date.now() - this.startedAt) / 1000),
        push: { connected: true, last_message_at: this.watch.lastMessageAt?.toISOString() ?? null },
        at: new Date().toISOString(),
      };
      await this.fleet.put(heartbeatKey(this.o.location, this.serverId), JSON.stringify(beat));
      this.lastBeatError = undefined;
      if (this.o.onFleetSize) {
        // Servers that are not ready get no traffic from Envoy, so they hold no share; this one always counts.
        // By server id: a key listing that races with another server's put can name a key twice
        // (seen when all servers beat at once on a swap), and a double count halves everyone's share.
        const beats = await readFleet(this.fleet, this.o.location);
        const others = new Set(beats.filter((b) => b.ready && b.server_id !== this.serverId).map((b) => b.server_id));
        this.o.onFleetSize(others.size + 1);
      }
    } catch (err) {
      const message = (err as Error).message;
      if (this.lastBeatError !== message)
        this.o.logger.warn({ error: message }, 'could not publish the fleet heartbeat to NATS');
      this.lastBeatError = message;
      this.fleet = undefined;
    }
  }
}
