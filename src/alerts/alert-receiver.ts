/**
 * `authz alerts serve`: an HTTP receiver for Alertmanager's webhook that
 * switches the fleet's mode through the bundle store (the same path as
 * `authz mode set`). Its own process and port, so the data plane's admin
 * port stays read-only.
 *
 *   POST / or /alerts   Alertmanager webhook (authenticated: bearer token or mTLS)
 *   GET  /status        firing mapped alerts, the mode they ask for, when normal returns
 *   GET  /metrics       Prometheus counters of requests by result and of mode switches
 *
 * Answers: 200 applied (or nothing to do), 400 malformed, 401 unauthenticated
 * (nothing changes), 413 too large, 500 the store refused (Alertmanager retries).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { listenOnPort } from '../server/listen-port.js';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { Counter, Gauge, Registry } from 'prom-client';
import type { Mode } from '../bundle/bundle-settings.js';
import { MAX_ALERT_BODY_BYTES, parseAlertPayload, type AlertPayload } from './alertmanager-payload.js';
import type { AlertModeState, FiringAlert } from './alert-mode-state.js';

/** After a failed return to normal, try again this much later (the store may be briefly unreachable). */
export const RETURN_RETRY_MS = 5_000;

export interface ModeChange {
  mode: Mode;
  who: string;
  why: string;
  details: Record<string, unknown>;
}

export interface ApplyOutcome {
  changed: boolean;
  /** One line for the log and the response: "mode normal -> high-alert: published shop v1--high-alert-...". */
  message: string;
}

/** Switches the fleet's mode: the store (switchMode), or a dry run that only says what it would do. */
export interface ModeApplier {
  apply(change: ModeChange): Promise<ApplyOutcome>;
}

export interface SenderAuth {
  /** Bearer token the sender must present. */
  token?: string;
  /** The listener asks for client certificates (mTLS); an authorized one authenticates the sender. */
  mtls?: boolean;
}

export interface TlsFiles {
  cert: Buffer;
  key: Buffer;
  /** CA of client certificates (mTLS). */
  clientCa?: Buffer;
}

export interface AlertReceiverOptions {
  state: AlertModeState;
  applier: ModeApplier;
  auth: SenderAuth;
  logger: Logger;
  tls?: TlsFiles;
  now?: () => number;
}

type Result = 'applied' | 'unchanged' | 'unauthenticated' | 'malformed' | 'too_large' | 'store_error';

export class AlertReceiver {
  readonly registry = new Registry();
  private readonly requests: Counter<'result'>;
  private readonly switches: Counter<'mode'>;
  private readonly server: Server;
  private readonly now: () => number;
  private chain: Promise<unknown> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private lastSender = '';

  constructor(private readonly o: AlertReceiverOptions) {
    this.now = o.now ?? Date.now;
    this.requests = new Counter({
      name: 'authz_alert_requests_total',
      help: 'Webhook requests by result (unauthenticated ones change nothing)',
      labelNames: ['result'],
      registers: [this.registry],
    });
    this.switches = new Counter({
      name: 'authz_alert_mode_switches_total',
      help: 'Mode switches published because of alerts',
      labelNames: ['mode'],
      registers: [this.registry],
    });
    const state = o.state;
    new Gauge({
      name: 'authz_alerts_firing',
      help: 'Mapped alerts firing now',
      registers: [this.registry],
      collect() {
        this.set(state.firingCount);
      },
    });
    const handler = (req: IncomingMessage, res: ServerResponse) => void this.route(req, res);
    this.server = o.tls
      ? createHttpsServer(
          {
            cert: o.tls.cert,
            key: o.tls.key,
            ca: o.tls.clientCa,
            requestCert: !!o.tls.clientCa,
            rejectUnauthorized: false,
          },
          handler,
        )
      : createHttpServer(handler);
  }

  listen(host: string, port: number): Promise<number> {
    return listenOnPort(this.server, host, port);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await this.chain.catch(() => undefined);
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    try {
      if (req.method === 'GET' && path === '/status') return send(res, 200, this.o.state.snapshot(this.now()));
      if (req.method === 'GET' && path === '/metrics') {
        res.writeHead(200, { 'content-type': this.registry.contentType }).end(await this.registry.metrics());
        return;
      }
      if (path !== '/' && path !== '/alerts')
        return send(res, 404, { error: `no route ${path}; Alertmanager posts to / or /alerts` });
      if (req.method !== 'POST')
        return send(res, 405, { error: 'POST an Alertmanager webhook payload' }, { allow: 'POST' });
      await this.receive(req, res);
    } catch (err) {
      this.o.logger.error({ err }, 'alert receiver failed unexpectedly');
      if (!res.headersSent) send(res, 500, { error: 'internal error' });
    }
  }

  private async receive(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const sender = this.authenticate(req);
    if (!sender) {
      this.count('unauthenticated');
      this.o.logger.warn(
        { remote: req.socket.remoteAddress },
        'unauthenticated alert webhook refused; nothing changed',
      );
      req.resume();
      return send(
        res,
        401,
        { error: 'unauthenticated: send Authorization: Bearer <token> (or a client certificate)' },
        { 'www-authenticate': 'Bearer' },
      );
    }
    const body = await readBody(req, MAX_ALERT_BODY_BYTES);
    if (body === undefined) {
      this.count('too_large');
      return send(res, 413, { error: `body over ${MAX_ALERT_BODY_BYTES} bytes` });
    }
    const parsed = parseAlertPayload(body);
    if (!parsed.ok) {
      this.count('malformed');
      return send(res, 400, { error: parsed.message });
    }
    const seen = this.o.state.observe(parsed.payload.alerts, this.now());
    for (const a of seen.unmapped)
      this.o.logger.info(
        { alert: a.name, status: a.status, fingerprint: a.fingerprint },
        'alert matches no rule; ignored',
      );
    this.lastSender = sender;
    try {
      const outcome = await this.reconcile({ payload: parsed.payload, sender });
      this.count(outcome?.changed ? 'applied' : 'unchanged');
      return send(res, 200, {
        mapped: seen.mapped.length,
        unmapped: seen.unmapped.map((a) => a.name),
        result: outcome?.message ?? 'nothing to change',
        ...this.o.state.snapshot(this.now()),
      });
    } catch (err) {
      this.count('store_error');
      this.o.logger.error({ error: (err as Error).message }, 'could not switch the mode; Alertmanager will retry');
      return send(res, 500, { error: (err as Error).message });
    }
  }

  private count(result: Result): void {
    this.requests.inc({ result });
  }

  /** The sender's name for the audit record, or undefined when it is not authenticated. */
  private authenticate(req: IncomingMessage): string | undefined {
    const remote = req.socket.remoteAddress ?? 'unknown';
    if (this.o.auth.mtls) {
      const socket = req.socket as TLSSocket;
      if (socket.authorized) {
        const cert = socket.getPeerCertificate();
        const uri = /URI:([^,\s]+)/.exec(cert.subjectaltname ?? '')?.[1];
        return `client certificate ${uri ?? cert.subject?.CN ?? 'unnamed'} from ${remote}`;
      }
    }
    const token = this.o.auth.token;
    const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    if (token && m && sameSecret(m[1], token)) return `bearer token from ${remote}`;
    return undefined;
  }

  /** One mode change at a time, in arrival order: two posts never race on the store. */
  private reconcile(trigger?: { payload: AlertPayload; sender: string }): Promise<ApplyOutcome | undefined> {
    const next = this.chain.then(() => this.reconcileNow(trigger));
    this.chain = next.catch(() => undefined);
    return next;
  }

  private async reconcileNow(trigger?: { payload: AlertPayload; sender: string }): Promise<ApplyOutcome | undefined> {
    if (this.closed) return undefined;
    const wanted = this.o.state.wanted(this.now());
    if (wanted.kind !== 'hold') clearTimeout(this.timer);
    switch (wanted.kind) {
      case 'idle':
        return undefined;
      case 'hold':
        this.schedule(wanted.at - this.now());
        return {
          changed: false,
          message: `every mapped alert resolved; normal at ${new Date(wanted.at).toISOString()} unless one fires again (hold-down)`,
        };
      case 'engage': {
        const cause = pickCause(wanted.firing, trigger?.payload);
        return this.applied(
          await this.o.applier.apply({
            mode: wanted.mode,
            who: `alertmanager (${trigger?.sender ?? this.lastSender})`,
            why: `alert ${cause.name} firing`,
            details: {
              alert: cause.name,
              fingerprint: cause.fingerprint,
              firing: wanted.firing.map((f) => ({ alert: f.name, fingerprint: f.fingerprint })),
              receiver: trigger?.payload.receiver ?? null,
              group_key: trigger?.payload.groupKey ?? null,
              sender: trigger?.sender ?? this.lastSender,
            },
          }),
          wanted.mode,
        );
      }
      case 'return': {
        const outcome = await this.o.applier.apply({
          mode: 'normal',
          who: `alertmanager (${trigger?.sender ?? this.lastSender})`,
          why: `alerts resolved (${[...new Set(wanted.resolved.map((r) => r.name))].join(', ')}) and stayed resolved for the ${this.o.state.holdDownMs / 1000}s hold-down`,
          details: {
            resolved: wanted.resolved.map((r) => ({ alert: r.name, fingerprint: r.fingerprint })),
            hold_down_ms: this.o.state.holdDownMs,
            sender: trigger?.sender ?? this.lastSender,
          },
        });
        this.o.state.returned();
        return this.applied(outcome, 'normal');
      }
    }
  }

  private applied(outcome: ApplyOutcome, mode: Mode): ApplyOutcome {
    if (outcome.changed) this.switches.inc({ mode });
    this.o.logger.info({ mode, changed: outcome.changed }, outcome.message);
    return outcome;
  }

  /** The return to normal is due after the hold-down even if Alertmanager says nothing more. */
  private schedule(inMs: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(
      () => {
        this.reconcile().catch((err: unknown) => {
          this.o.logger.error(
            { error: (err as Error).message, retry_ms: RETURN_RETRY_MS },
            'could not return to normal; retrying',
          );
          if (!this.closed) this.schedule(RETURN_RETRY_MS);
        });
      },
      Math.max(0, inMs),
    );
    this.timer.unref();
  }
}

/** The alert of this post that fires (else the longest-firing one): what the audit record names as the cause. */
function pickCause(firing: FiringAlert[], payload: AlertPayload | undefined): FiringAlert {
  const fresh = payload?.alerts.find(
    (a) => a.status === 'firing' && firing.some((f) => f.fingerprint === a.fingerprint),
  );
  return (fresh && firing.find((f) => f.fingerprint === fresh.fingerprint)) ?? firing[0];
}

/** Constant-time comparison of two secrets of any length. */
function sameSecret(a: string, b: string): boolean {
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());
}

function readBody(req: IncomingMessage, limit: number): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) over = true;
      else chunks.push(c);
    });
    req.on('end', () => resolve(over ? undefined : Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body) + '\n');
}
