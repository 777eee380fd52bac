/**
 * The Check and Health services served by a gRPC server written on
 * node:http2 (`--transport http2`), for the unary calls Envoy makes. It
 * serves the same CheckHandler as grpc-js (grpc-server.ts) with the same
 * bounds (transport-schema.ts) and answers the same statuses a grpc-js
 * client sees; what grpc-js does per call and we need not (interceptor
 * chains, metadata objects, per-call state machines, a generic
 * deserializer) is where the time goes (docs/performance.md).
 *
 * Not offered here: gRPC reflection (grpcurl needs --proto files), Health
 * Watch (answered UNIMPLEMENTED), compressed messages (grpc-encoding other
 * than identity; Envoy does not compress ext_authz calls).
 */
import http2 from 'node:http2';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import type { TransportConfig } from '../config/transport-schema.js';
import { decodeCheckRequest } from '../envoy/check-request-decoder.js';
import {
  AUTHORIZATION_SERVICE_NAME,
  authorizationService,
  HEALTH_SERVICE_NAME,
  healthService,
} from '../envoy/protos.js';
import type { WireCheckResponse } from '../envoy/wire-types.js';
import type { CheckHandler } from './check-handler.js';
import { checkRequestLimits, type ServingStatus } from './grpc-server.js';
import {
  encodeGrpcMessage,
  frameMessage,
  GrpcStatus,
  isGrpcContentType,
  MESSAGE_PREFIX_BYTES,
  parseGrpcTimeout,
  type GrpcStatusCode,
} from './grpc-framing.js';
import { GRPC_MAX_HEADER_PAIRS, PendingRequestBytes } from './grpc-transport.js';

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
}

type Serialize = (value: unknown) => Buffer;
type Deserialize = (bytes: Buffer) => unknown;

export class Http2GrpcServer {
  readonly server: http2.Http2Server | http2.Http2SecureServer;
  readonly pending: PendingRequestBytes;
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  private readonly serializeCheckResponse: Serialize;
  private readonly serializeHealthResponse: Serialize;
  private readonly deserializeHealthRequest: Deserialize;
  private readonly limits;

  constructor(private readonly options: Http2GrpcServerOptions) {
    const t = options.transport;
    this.limits = checkRequestLimits(t);
    this.pending = new PendingRequestBytes(t.maxPendingRequestBytes, t.grpcReceiveTimeout, {
      onDropped: (cause) => options.onCallDropped?.(cause),
    });
    this.serializeCheckResponse = authorizationService().service.Check.responseSerialize as Serialize;
    const health = healthService().service.Check;
    this.serializeHealthResponse = health.responseSerialize as Serialize;
    this.deserializeHealthRequest = health.requestDeserialize as Deserialize;
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

  /** Health Watch is not offered on this transport; nothing to push. */
  notifyHealth(): void {}

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
      for (const s of this.sessions) goAway(s);
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
    const goaway = (): void => goAway(session);
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
    if (path !== CHECK_PATH && path !== HEALTH_CHECK_PATH) {
      const message =
        path === HEALTH_WATCH_PATH
          ? 'Health/Watch is not offered by the http2 transport (use Health/Check)'
          : `Method not found: ${path}`;
      sendStatus(stream, GrpcStatus.UNIMPLEMENTED, message);
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
        sendMessage(stream, this.serializeCheckResponse(response));
        return;
      }
      this.answerCheck(stream, outcome.message, deadlineMs);
    });
  }

  private answerCheck(stream: http2.ServerHttp2Stream, bytes: Buffer, deadlineMs: number | undefined): void {
    const request = decodeCheckRequest(bytes, this.limits);
    const answer = this.options.handler.handle(request, deadlineMs);
    if (!(answer instanceof Promise)) {
      sendMessage(stream, this.serializeCheckResponse(answer));
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
        sendMessage(stream, this.serializeCheckResponse(response));
      },
      (err: Error) => {
        if (timer) clearTimeout(timer);
        sendStatus(stream, GrpcStatus.INTERNAL, err.message);
      },
    );
  }

  private answerHealth(stream: http2.ServerHttp2Stream, bytes: Buffer): void {
    let service: string;
    try {
      service = (this.deserializeHealthRequest(bytes) as { service?: string }).service ?? '';
    } catch {
      sendStatus(stream, GrpcStatus.INTERNAL, 'HealthCheckRequest is not valid protobuf');
      return;
    }
    sendMessage(stream, this.serializeHealthResponse({ status: this.statusFor(service) }));
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

type ReadOutcome =
  | { kind: 'message'; message: Buffer }
  | { kind: 'oversize' }
  | { kind: 'compressed' }
  | { kind: 'error'; code: GrpcStatusCode; message: string };

/**
 * Reads the one request message of a unary call. The length prefix is read
 * first: a message over `maxBytes` is answered as soon as its prefix arrives,
 * and its bytes are never held.
 */
function readUnaryMessage(
  stream: http2.ServerHttp2Stream,
  maxBytes: number,
  done: (outcome: ReadOutcome) => void,
): void {
  let prefix: Buffer | undefined;
  let body: Buffer | undefined;
  let filled = 0;
  let finished = false;
  let messages = 0;
  const finish = (outcome: ReadOutcome): void => {
    if (finished) return;
    finished = true;
    stream.off('data', onData);
    stream.off('end', onEnd);
    done(outcome);
  };
  const onData = (chunk: Buffer): void => {
    let at = 0;
    while (at < chunk.length && !finished) {
      if (body === undefined) {
        // Collect the 5-byte prefix (it may be split over DATA frames).
        const need = MESSAGE_PREFIX_BYTES - filled;
        const take = Math.min(need, chunk.length - at);
        prefix ??= Buffer.alloc(MESSAGE_PREFIX_BYTES);
        chunk.copy(prefix, filled, at, at + take);
        filled += take;
        at += take;
        if (filled < MESSAGE_PREFIX_BYTES) return;
        if (++messages > 1) {
          finish({
            kind: 'error',
            code: GrpcStatus.UNIMPLEMENTED,
            message: 'more than one request message for a unary method',
          });
          return;
        }
        const flag = prefix[0];
        if (flag === 1) {
          finish({ kind: 'compressed' });
          return;
        }
        if (flag !== 0) {
          finish({ kind: 'error', code: GrpcStatus.INTERNAL, message: `invalid message flag ${flag}` });
          return;
        }
        const length = prefix.readUInt32BE(1);
        if (length > maxBytes) {
          finish({ kind: 'oversize' });
          return;
        }
        body = Buffer.allocUnsafe(length);
        filled = 0;
      }
      const take = Math.min(body.length - filled, chunk.length - at);
      chunk.copy(body, filled, at, at + take);
      filled += take;
      at += take;
      if (filled === body.length) {
        if (at < chunk.length) {
          finish({
            kind: 'error',
            code: GrpcStatus.UNIMPLEMENTED,
            message: 'more than one request message for a unary method',
          });
          return;
        }
        // Complete; answered at the client's half-close, so a second message is still caught.
      }
    }
  };
  const onEnd = (): void => {
    if (body !== undefined && filled === body.length) {
      finish({ kind: 'message', message: body });
      return;
    }
    if (body === undefined && filled === 0) {
      finish({ kind: 'error', code: GrpcStatus.INTERNAL, message: 'the call ended without a request message' });
      return;
    }
    finish({
      kind: 'error',
      code: GrpcStatus.INTERNAL,
      message: 'the call ended inside a message (truncated length prefix or body)',
    });
  };
  stream.on('data', onData);
  stream.on('end', onEnd);
}

function sendMessage(stream: http2.ServerHttp2Stream, message: Buffer): void {
  if (stream.destroyed || stream.closed || stream.headersSent) return;
  stream.respond(
    { ':status': 200, 'content-type': 'application/grpc', 'grpc-accept-encoding': 'identity' },
    { waitForTrailers: true },
  );
  stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'grpc-message': 'OK' }));
  stream.end(frameMessage(message));
}

/** A trailers-only response: the status in the one HEADERS frame, which ends the stream. */
function sendStatus(stream: http2.ServerHttp2Stream, code: GrpcStatusCode, message: string): void {
  if (stream.destroyed || stream.closed || stream.headersSent) return;
  stream.respond(
    {
      ':status': 200,
      'content-type': 'application/grpc',
      'grpc-status': String(code),
      'grpc-message': encodeGrpcMessage(message),
    },
    { endStream: true },
  );
}
