/**
 * The Check and Health services served by a gRPC server written on
 * node:http2 (`--transport http2`), for the unary calls Envoy makes. It
 * serves the same CheckHandler as grpc-js (grpc-server.ts) with the same
 * bounds (transport-schema.ts) and answers the same statuses a grpc-js
 * client sees; what grpc-js does per call and we need not (interceptor
 * chains, metadata objects, per-call state machines, a generic
 * deserializer) is where the time goes (docs/performance.md).
 *
 * Also served, as on grpc-js: Health Watch (http2-health-watch.ts) and
 * gRPC server reflection (http2-reflection.ts). Not offered: compressed
 * messages (grpc-encoding other than identity; Envoy does not compress
 * ext_authz calls).
 */
import http2 from 'node:http2';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import type { TransportConfig } from '../config/transport-schema.js';
import { decodeCheckRequest } from '../envoy/check-request-decoder.js';
import { encodeFramedCheckResponse } from '../envoy/check-response-encoder.js';
import { AUTHORIZATION_SERVICE_NAME, HEALTH_SERVICE_NAME, healthService } from '../envoy/protos.js';
import type { WireCheckResponse } from '../envoy/wire-types.js';
import type { CheckHandler } from './check-handler.js';
import { checkRequestLimits, type ServingStatus } from './grpc-server.js';
import { encodeGrpcMessage, GrpcStatus, isGrpcContentType, parseGrpcTimeout } from './grpc-framing.js';
import { GRPC_MAX_HEADER_PAIRS, PendingRequestBytes } from './grpc-transport.js';
import { readUnaryMessage, sendFramedMessage, sendMessage, sendStatus } from './http2-grpc-calls.js';
import { HealthWatchers } from './http2-health-watch.js';
import { Http2Reflection } from './http2-reflection.js';

const CHECK_PATH = `/${AUTHORIZATION_SERVICE_NAME}/Check`;
const HEALTH_CHECK_PATH = `/${HEALTH_SERVICE_NAME}/Check`;
const HEALTH_WATCH_PATH = `/${HEALTH_SERVICE_NAME}/Watch`;
const HEALTH_SERVICES = new Set(['', AUTHORIZATION_SERVICE_NAME]);
/** A health request is one short string; anything bigger is not one. */
const MAX_HEALTH_REQUEST_BYTES = 4096;
/** grpc-js treats a keepalive time at or past 2^31-1 ms as "never ping". */
const KEEPALIVE_NEVER_MS = 2 ** 31 - 1;
/** GOAWAY's last stream id for "no new streams, but every stream already opened is processed" (RFC 9113 §6.8). */
const ALL_STREAMS = 2 ** 31 - 1;

/** PEM material for the listener, as tls.ts reads it. */
export interface Http2TlsOptions {
  cert: Buffer;
  key: Buffer;
  /** Client CA: with it, clients must present a certificate it signed (mTLS). */
  clientCa?: Buffer;
}

export interface Http2GrpcServerOptions {
  handler: CheckHandler;
  isServing: () => boolean;
  tls?: Http2TlsOptions;
  refuseCaller?: (auth: { sslPeerCertificate?: PeerCertificate } | null) => string | undefined;
  transport: TransportConfig;
  onCallDropped?: (cause: 'memory' | 'receive_timeout') => void;
  /** gRPC server reflection on the port (`--grpc-reflection`). */
  reflection?: boolean;
}

type Serialize = (value: unknown) => Buffer;
type Deserialize = (bytes: Buffer) => unknown;

export class Http2GrpcServer {
  readonly server: http2.Http2Server | http2.Http2SecureServer;
  readonly pending: PendingRequestBytes;
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  private readonly serializeHealthResponse: Serialize;
  private readonly deserializeHealthRequest: Deserialize;
  private readonly limits;
  private readonly healthWatchers: HealthWatchers;
  private readonly reflection: Http2Reflection | undefined;

  constructor(private readonly options: Http2GrpcServerOptions) {
    const t = options.transport;
    this.limits = checkRequestLimits(t);
    this.pending = new PendingRequestBytes(t.maxPendingRequestBytes, t.grpcReceiveTimeout, {
      onDropped: (cause) => options.onCallDropped?.(cause),
    });
    const health = healthService().service.Check;
    this.serializeHealthResponse = health.responseSerialize as Serialize;
    this.deserializeHealthRequest = health.requestDeserialize as Deserialize;
    const healthResponses = new Map<ServingStatus, Buffer>(
      (['SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'] as const).map((s) => [
        s,
        this.serializeHealthResponse({ status: s }),
      ]),
    );
    this.healthWatchers = new HealthWatchers(
      (service) => this.statusFor(service),
      (status) => healthResponses.get(status)!,
    );
    this.reflection = options.reflection ? new Http2Reflection() : undefined;
    const http2Options: http2.ServerOptions = {
      settings: { maxConcurrentStreams: t.grpcMaxConcurrentStreams, maxHeaderListSize: t.grpcMaxHeaderListBytes },
      maxHeaderListPairs: GRPC_MAX_HEADER_PAIRS,
      maxSessionMemory: t.grpcMaxSessionMemory,
    };
    const tls = options.tls;
    this.server = tls
      ? http2.createSecureServer({
          ...http2Options,
          cert: tls.cert,
          key: tls.key,
          ...(tls.clientCa ? { ca: tls.clientCa, requestCert: true, rejectUnauthorized: true } : {}),
          ALPNProtocols: ['h2'],
        })
      : http2.createServer(http2Options);
    // A TLS handshake that fails (plaintext client, unknown CA) is the client's problem, not a server error.
    this.server.on('tlsClientError', () => {});
    this.server.on('session', (session) => this.onSession(session));
    this.server.on('stream', (stream, headers) => this.onStream(stream, headers));
  }

  statusFor(service: string): ServingStatus {
    if (!HEALTH_SERVICES.has(service)) return 'SERVICE_UNKNOWN';
    return this.options.isServing() ? 'SERVING' : 'NOT_SERVING';
  }

  /** Push the status to Watch calls whose status changed (call after a readiness change). */
  notifyHealth(): void {
    this.healthWatchers.notify();
  }

  /** Health Watch calls open now. */
  get watchers(): number {
    return this.healthWatchers.size;
  }

  bind(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.server.once('error', onError);
      this.server.listen(port, host.startsWith('[') ? host.slice(1, -1) : host, () => {
        this.server.off('error', onError);
        const address = this.server.address();
        resolve(typeof address === 'object' && address ? address.port : port);
      });
    });
  }

  /** GOAWAY to every connection, calls in flight get `graceMs`, then connections are destroyed. */
  close(graceMs = 2000): Promise<void> {
    this.pending.stop();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        for (const s of this.sessions) s.destroy();
      }, graceMs);
      timer.unref();
      this.server.close(() => {
        clearTimeout(timer);
        resolve();
      });
      this.healthWatchers.end();
      for (const s of this.sessions) this.goAway(s);
    });
  }

  /** Keepalive pings, idle close and connection age, with the timing grpc-js's server uses. */
  private onSession(session: http2.ServerHttp2Session): void {
    const t = this.options.transport;
    this.sessions.add(session);
    session.on('error', () => {});
    const timers: NodeJS.Timeout[] = [];
    const later = (ms: number, fn: () => void): NodeJS.Timeout => {
      const timer = setTimeout(fn, ms);
      timer.unref();
      timers.push(timer);
      return timer;
    };
    const goaway = (): void => this.goAway(session);
    // Age: ±10 % jitter so a fleet's connections do not all recycle at once.
    const age = t.grpcMaxConnectionAge + (Math.random() * 0.2 - 0.1) * t.grpcMaxConnectionAge;
    later(age, () => {
      goaway();
      later(t.grpcMaxConnectionAgeGrace, () => session.destroy());
    });
    // Idle: no stream open for grpcMaxConnectionIdle.
    let idleTimer: NodeJS.Timeout | undefined;
    const armIdle = (): void => {
      idleTimer = later(t.grpcMaxConnectionIdle, goaway);
    };
    armIdle();
    let open = 0;
    session.on('stream', (stream) => {
      if (open++ === 0 && idleTimer) clearTimeout(idleTimer);
      stream.once('close', () => {
        if (--open === 0 && !session.closed) armIdle();
      });
    });
    // Keepalive: ping every keepalive time; no answer within the timeout drops the connection.
    if (t.grpcKeepaliveTime > 0 && t.grpcKeepaliveTime < KEEPALIVE_NEVER_MS) {
      const ping = (): void => {
        if (session.destroyed) return;
        const deadline = later(t.grpcKeepaliveTimeout, () => session.destroy());
        const sent = session.ping((err) => {
          clearTimeout(deadline);
          if (err) session.destroy();
          else later(t.grpcKeepaliveTime, ping);
        });
        if (!sent) session.destroy();
      };
      later(t.grpcKeepaliveTime, ping);
    }
    session.once('close', () => {
      this.sessions.delete(session);
      for (const timer of timers) clearTimeout(timer);
    });
  }

  private onStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    stream.on('error', () => {});
    if (headers[':method'] !== 'POST' || !isGrpcContentType(headers['content-type'])) {
      // As grpc-js answers: not gRPC at all, so an HTTP status rather than a gRPC one.
      stream.respond(
        {
          ':status': 415,
          'grpc-status': String(GrpcStatus.INTERNAL),
          'grpc-message': encodeGrpcMessage(`content-type "${headers['content-type'] ?? ''}" is not application/grpc`),
        },
        { endStream: true },
      );
      return;
    }
    const path = headers[':path'];
    if (path === HEALTH_WATCH_PATH) {
      const timeoutMs = parseGrpcTimeout(headers['grpc-timeout']);
      if (timeoutMs === null) {
        sendStatus(stream, GrpcStatus.INTERNAL, `Invalid grpc-timeout value "${String(headers['grpc-timeout'])}"`);
        return;
      }
      this.pending.track(stream);
      this.startHealthWatch(stream, timeoutMs);
      return;
    }
    if (this.reflection?.serves(path)) {
      this.pending.track(stream);
      this.reflection.serve(stream, path!);
      return;
    }
    if (path !== CHECK_PATH && path !== HEALTH_CHECK_PATH) {
      sendStatus(stream, GrpcStatus.UNIMPLEMENTED, `Method not found: ${path}`);
      return;
    }
    const timeoutMs = parseGrpcTimeout(headers['grpc-timeout']);
    if (timeoutMs === null) {
      sendStatus(stream, GrpcStatus.INTERNAL, `Invalid grpc-timeout value "${String(headers['grpc-timeout'])}"`);
      return;
    }
    const deadlineMs = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
    const encoding = headers['grpc-encoding'];
    if (path === CHECK_PATH && this.options.refuseCaller) {
      const refused = this.options.refuseCaller(authContext(stream));
      if (refused !== undefined) {
        sendStatus(stream, GrpcStatus.UNAUTHENTICATED, refused);
        return;
      }
    }
    const isCheck = path === CHECK_PATH;
    const maxBytes = isCheck ? this.limits.maxRequestBytes : MAX_HEALTH_REQUEST_BYTES;
    this.pending.track(stream);
    readUnaryMessage(stream, maxBytes, (outcome) => {
      if (outcome.kind === 'error') {
        sendStatus(stream, outcome.code, outcome.message);
        return;
      }
      if (outcome.kind === 'compressed') {
        const named = typeof encoding === 'string' && encoding !== 'identity';
        sendStatus(
          stream,
          named ? GrpcStatus.UNIMPLEMENTED : GrpcStatus.INTERNAL,
          named
            ? `compressed messages (grpc-encoding ${encoding}) are not supported; send identity`
            : 'a message has the compressed flag set without a grpc-encoding',
        );
        return;
      }
      if (!isCheck) {
        if (outcome.kind === 'oversize') {
          sendStatus(stream, GrpcStatus.RESOURCE_EXHAUSTED, `health request is more than ${maxBytes} bytes`);
          return;
        }
        this.answerHealth(stream, outcome.message);
        return;
      }
      if (outcome.kind === 'oversize') {
        // As grpc-js's path does (grpc-transport.ts): a 431 deny decision, never buffered.
        const response = this.options.handler.refuse({
          reason: 'request_too_large',
          message: `CheckRequest is more than the limit of ${maxBytes} bytes (max-request-bytes)`,
        });
        sendFramedMessage(stream, encodeFramedCheckResponse(response));
        return;
      }
      this.answerCheck(stream, outcome.message, deadlineMs);
    });
  }

  private answerCheck(stream: http2.ServerHttp2Stream, bytes: Buffer, deadlineMs: number | undefined): void {
    const request = decodeCheckRequest(bytes, this.limits);
    const answer = this.options.handler.handle(request, deadlineMs);
    if (!(answer instanceof Promise)) {
      sendFramedMessage(stream, encodeFramedCheckResponse(answer));
      return;
    }
    // Only when a bearer token is verified for the first time; the call's deadline still holds.
    const timer =
      deadlineMs === undefined
        ? undefined
        : setTimeout(
            () => sendStatus(stream, GrpcStatus.DEADLINE_EXCEEDED, 'Deadline exceeded'),
            Math.max(0, deadlineMs - Date.now()),
          );
    answer.then(
      (response: WireCheckResponse) => {
        if (timer) clearTimeout(timer);
        sendFramedMessage(stream, encodeFramedCheckResponse(response));
      },
      (err: Error) => {
        if (timer) clearTimeout(timer);
        sendStatus(stream, GrpcStatus.INTERNAL, err.message);
      },
    );
  }

  private answerHealth(stream: http2.ServerHttp2Stream, bytes: Buffer): void {
    const service = this.healthService(stream, bytes);
    if (service !== undefined) sendMessage(stream, this.serializeHealthResponse({ status: this.statusFor(service) }));
  }

  /** The service a HealthCheckRequest names; undefined (and the call answered INTERNAL) when it is not one. */
  private healthService(stream: http2.ServerHttp2Stream, bytes: Buffer): string | undefined {
    try {
      return (this.deserializeHealthRequest(bytes) as { service?: string }).service ?? '';
    } catch {
      sendStatus(stream, GrpcStatus.INTERNAL, 'HealthCheckRequest is not valid protobuf');
      return undefined;
    }
  }

  /** Server streaming: the one request message (read to the client's half-close), then the watch. */
  private startHealthWatch(stream: http2.ServerHttp2Stream, timeoutMs: number | undefined): void {
    readUnaryMessage(stream, MAX_HEALTH_REQUEST_BYTES, (outcome) => {
      if (outcome.kind === 'error') sendStatus(stream, outcome.code, outcome.message);
      else if (outcome.kind === 'oversize')
        sendStatus(
          stream,
          GrpcStatus.RESOURCE_EXHAUSTED,
          `health request is more than ${MAX_HEALTH_REQUEST_BYTES} bytes`,
        );
      else if (outcome.kind === 'compressed')
        sendStatus(stream, GrpcStatus.UNIMPLEMENTED, 'compressed messages are not supported; send identity');
      else {
        const service = this.healthService(stream, outcome.message);
        if (service !== undefined) this.healthWatchers.watch(stream, service, timeoutMs);
      }
    });
  }

  /**
   * A graceful close: GOAWAY, streams already open finish, then the
   * connection closes. Health Watch calls never finish on their own, so they
   * are ended here (status OK) and the client watches again elsewhere.
   */
  private goAway(session: http2.ServerHttp2Session): void {
    this.healthWatchers.end(session);
    goAway(session);
  }
}

/** A graceful close: GOAWAY, streams already open finish, then the connection closes. */
function goAway(session: http2.ServerHttp2Session): void {
  if (session.closed || session.destroyed) return;
  try {
    session.goaway(http2.constants.NGHTTP2_NO_ERROR, ALL_STREAMS);
  } catch {
    session.destroy();
    return;
  }
  session.close();
}

function authContext(stream: http2.ServerHttp2Stream): { sslPeerCertificate?: PeerCertificate } | null {
  // As grpc-js's getAuthContext: a certificate only from an authorized TLS peer.
  const socket = stream.session?.socket as TLSSocket | undefined;
  if (!socket || typeof socket.getPeerCertificate !== 'function' || !socket.authorized) return {};
  const cert = socket.getPeerCertificate();
  return { sslPeerCertificate: cert.raw ? cert : undefined };
}
