/**
 * The NATS side of push: connection settings from the config (URLs,
 * credentials file, TLS), a one-shot connection for CLI commands, and a
 * long-lived one for servers that keeps trying in the background.
 *
 * NATS is never on the critical path: a server serves, polls and swaps
 * whether or not NATS is there, and a command that cannot reach it still
 * made its change in the store. So nothing here throws into a caller that
 * has something better to do; failures become states and log lines.
 */
import { redactUrl } from '../../observability/redaction.js';
import { readFileSync } from 'node:fs';
import {
  connect,
  credsAuthenticator,
  Events,
  type ConnectionOptions,
  type KV,
  type KvOptions,
  type NatsConnection,
} from 'nats';
import type { Logger } from 'pino';

export interface NotifySettings {
  servers: string[];
  credsFile?: string;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
}

/** How long a command waits for NATS before saying push failed (the change is already in the store). */
export const COMMAND_CONNECT_TIMEOUT_MS = 2_000;
/** A server's wait between attempts while NATS cannot be reached at all (after the first connect the client reconnects itself). */
export const SERVER_CONNECT_RETRY_MS = 2_000;
/** The client's own reconnect pause; short, since a server that missed a message converges on reconnect. */
export const RECONNECT_WAIT_MS = 500;

export class NotifyError extends Error {}

/** Config keys → settings; undefined without `notify`. */
export function notifySettingsOf(config: {
  notify?: string[];
  notifyCreds?: string;
  notifyTlsCa?: string;
  notifyTlsCert?: string;
  notifyTlsKey?: string;
}): NotifySettings | undefined {
  if (!config.notify) return undefined;
  return {
    servers: config.notify,
    credsFile: config.notifyCreds,
    tlsCa: config.notifyTlsCa,
    tlsCert: config.notifyTlsCert,
    tlsKey: config.notifyTlsKey,
  };
}

/** For messages: the URLs without any user:password@ part. */
export function describeServers(s: NotifySettings): string {
  return s.servers.map(redactUrl).join(',');
}

/** Start-up check of the files the settings name, so a bad path stops `serve` with the field's name instead of a retry loop. */
export function checkNotifyFiles(s: NotifySettings): void {
  const files: [string, string | undefined][] = [
    ['notifyCreds', s.credsFile],
    ['notifyTlsCa', s.tlsCa],
    ['notifyTlsCert', s.tlsCert],
    ['notifyTlsKey', s.tlsKey],
  ];
  for (const [field, file] of files) {
    if (file === undefined) continue;
    try {
      readFileSync(file);
    } catch (err) {
      throw new NotifyError(`${field}: cannot read ${file}: ${(err as Error).message}`);
    }
  }
}

function connectionOptions(s: NotifySettings, name: string): ConnectionOptions {
  const opts: ConnectionOptions = { servers: s.servers, name };
  if (s.credsFile) {
    let creds: Uint8Array;
    try {
      creds = readFileSync(s.credsFile);
    } catch (err) {
      throw new NotifyError(`notifyCreds: cannot read ${s.credsFile}: ${(err as Error).message}`);
    }
    opts.authenticator = credsAuthenticator(creds);
  }
  if (s.tlsCa || s.tlsCert || s.servers.some((u) => u.startsWith('tls://'))) {
    opts.tls = { caFile: s.tlsCa, certFile: s.tlsCert, keyFile: s.tlsKey };
  }
  return opts;
}

/** One connection for one command: fails fast, never reconnects. */
export async function connectOnce(
  s: NotifySettings,
  name: string,
  timeoutMs = COMMAND_CONNECT_TIMEOUT_MS,
): Promise<NatsConnection> {
  return connect({ ...connectionOptions(s, name), timeout: timeoutMs, reconnect: false, maxReconnectAttempts: 0 });
}

/** A key-value bucket, created with these limits if it does not exist yet. */
export function openBucket(nc: NatsConnection, bucket: string, opts: Partial<KvOptions> = {}): Promise<KV> {
  return nc.jetstream({ timeout: COMMAND_CONNECT_TIMEOUT_MS }).views.kv(bucket, { history: 1, ...opts });
}

export type ConnectionState = 'connecting' | 'connected' | 'disconnected' | 'closed';

/**
 * A server's connection: connects in the background (start() returns at
 * once), calls `onUp` on the first connect and on every reconnect (so the
 * watch and the heartbeat can be set up again and the store re-read), and
 * reconnects for as long as the server runs.
 */
export class NotifyConnection {
  state: ConnectionState = 'connecting';
  nc: NatsConnection | undefined;
  lastError: string | undefined;
  private readonly upHandlers: ((nc: NatsConnection) => void)[] = [];
  private readonly downHandlers: (() => void)[] = [];
  private attempt: Promise<void> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    readonly settings: NotifySettings,
    private readonly name: string,
    private readonly logger: Logger,
  ) {}

  onUp(handler: (nc: NatsConnection) => void): void {
    this.upHandlers.push(handler);
  }

  onDown(handler: () => void): void {
    this.downHandlers.push(handler);
  }

  start(): void {
    this.attempt = this.tryConnect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    await this.attempt;
    const nc = this.nc;
    this.nc = undefined;
    this.state = 'closed';
    await nc?.close().catch(() => undefined);
  }

  private async tryConnect(): Promise<void> {
    let nc: NatsConnection;
    try {
      nc = await connect({
        ...connectionOptions(this.settings, this.name),
        timeout: COMMAND_CONNECT_TIMEOUT_MS,
        reconnect: true,
        maxReconnectAttempts: -1,
        reconnectTimeWait: RECONNECT_WAIT_MS,
      });
    } catch (err) {
      const message = (err as Error).message;
      if (this.lastError !== message)
        this.logger.warn(
          { nats: describeServers(this.settings), error: message },
          'cannot reach NATS; polling the store meanwhile, will keep trying',
        );
      this.lastError = message;
      this.state = 'disconnected';
      if (!this.stopped) {
        this.retryTimer = setTimeout(() => (this.attempt = this.tryConnect()), SERVER_CONNECT_RETRY_MS);
        this.retryTimer.unref();
      }
      return;
    }
    if (this.stopped) {
      await nc.close().catch(() => undefined);
      return;
    }
    this.nc = nc;
    this.state = 'connected';
    this.lastError = undefined;
    this.logger.info({ nats: describeServers(this.settings) }, 'connected to NATS; policy changes are pushed');
    void this.followStatus(nc);
    void nc.closed().then((err) => {
      if (this.stopped) return;
      // Only when the client gives up (it reconnects forever, so: an auth error and the like).
      this.state = 'closed';
      this.lastError = err?.message ?? 'connection closed';
      this.logger.warn({ error: this.lastError }, 'NATS connection closed; polling the store only, reconnecting');
      for (const h of this.downHandlers) h();
      this.nc = undefined;
      this.retryTimer = setTimeout(() => (this.attempt = this.tryConnect()), SERVER_CONNECT_RETRY_MS);
      this.retryTimer.unref();
    });
    this.fireUp(nc);
  }

  private fireUp(nc: NatsConnection): void {
    for (const h of this.upHandlers) {
      try {
        h(nc);
      } catch (err) {
        this.logger.error({ err }, 'NATS connect handler failed');
      }
    }
  }

  private async followStatus(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (this.stopped) return;
      if (s.type === Events.Disconnect) {
        this.state = 'disconnected';
        this.logger.warn({ nats: describeServers(this.settings) }, 'NATS disconnected; polling the store meanwhile');
        for (const h of this.downHandlers) h();
      } else if (s.type === Events.Reconnect) {
        this.state = 'connected';
        this.logger.info({ nats: describeServers(this.settings) }, 'NATS reconnected');
        this.fireUp(nc);
      } else if (s.type === Events.Error) {
        this.lastError = String(s.data);
      }
    }
  }
}
