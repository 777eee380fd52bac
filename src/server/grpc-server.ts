/**
 * grpc-js wiring: the Authorization service and the standard Health service.
 */
import type { PeerCertificate } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import type { TransportConfig } from '../config/transport-schema.js';
import { DEFAULT_CHECK_REQUEST_LIMITS, type CheckRequestLimits } from '../envoy/check-request-limits.js';
import { checkRequestDeserializer } from '../envoy/check-request-decoder.js';
import { encodeCheckResponse } from '../envoy/check-response-encoder.js';
import { authorizationService, AUTHORIZATION_SERVICE_NAME, healthService } from '../envoy/protos.js';
import type { WireCheckRequest, WireCheckResponse } from '../envoy/wire-types.js';
import type { CheckHandler } from './check-handler.js';
import { boundHeaderLists, grpcServerOptions, PendingRequestBytes, transportInterceptor } from './grpc-transport.js';

export type ServingStatus = 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';

/** Services the health endpoint knows; "" is the whole server. */
const HEALTH_SERVICES = new Set(['', AUTHORIZATION_SERVICE_NAME]);

const CHECK_PATH = `/${AUTHORIZATION_SERVICE_NAME}/Check`;

export interface GrpcServerOptions {
  handler: CheckHandler;
  isServing: () => boolean;
  credentials?: grpc.ServerCredentials;
  /** `--allowed-callers`: a message when this call's peer may not ask for decisions (answered UNAUTHENTICATED). */
  refuseCaller?: (auth: { sslPeerCertificate?: PeerCertificate } | null) => string | undefined;
  /** HTTP/2 and message bounds (config: transport-schema.ts). */
  transport: TransportConfig;
  /** A call dropped by the pending-bytes bound or the receive timeout. */
  onCallDropped?: (cause: 'memory' | 'receive_timeout') => void;
  /** grpc-js internals moved: the pending-bytes bound is not applied. */
  onTransportWarning?: (message: string) => void;
}

export class GrpcServer {
  readonly server: grpc.Server;
  /** Open Health Watch calls and the status each was last sent. */
  private readonly watchers = new Map<
    grpc.ServerWritableStream<{ service?: string }, { status: string }>,
    ServingStatus
  >();

  readonly pending: PendingRequestBytes;

  constructor(private readonly options: GrpcServerOptions) {
    const t = options.transport;
    const handler = options.handler;
    this.pending = new PendingRequestBytes(t.maxPendingRequestBytes, t.grpcReceiveTimeout, {
      onDropped: (cause) => options.onCallDropped?.(cause),
    });
    const interceptor = transportInterceptor({
      pending: this.pending,
      checkPath: CHECK_PATH,
      answerOversize: () =>
        handler.refuse({
          reason: 'request_too_large',
          message: `CheckRequest is more than the limit of ${t.maxRequestBytes} bytes (max-request-bytes)`,
        }),
      onUntracked: () =>
        options.onTransportWarning?.(
          'grpc-js call has no http2 stream: max-pending-request-bytes and grpc-receive-timeout are not applied',
        ),
    });
    this.server = new grpc.Server(grpcServerOptions(t, [interceptor]));
    boundHeaderLists(this.server, t.grpcMaxHeaderListBytes);
    const refuseCaller = options.refuseCaller;
    this.server.addService(boundedAuthorizationService(checkRequestLimits(t)), {
      Check: (
        call: grpc.ServerUnaryCall<WireCheckRequest, WireCheckResponse>,
        callback: grpc.sendUnaryData<WireCheckResponse>,
      ) => {
        const refused = refuseCaller?.(call.getAuthContext());
        if (refused !== undefined) return callback({ code: grpc.status.UNAUTHENTICATED, details: refused });
        const answer = handler.handle(call.request, call.getDeadline());
        // A promise only when a bearer token is verified for the first time; the handler never rejects.
        if (answer instanceof Promise)
          answer.then(
            (r) => callback(null, r),
            (err: Error) => callback(err),
          );
        else callback(null, answer);
      },
    });
    this.server.addService(healthService().service, {
      Check: (
        call: grpc.ServerUnaryCall<{ service?: string }, { status: string }>,
        callback: grpc.sendUnaryData<{ status: string }>,
      ) => {
        callback(null, { status: this.statusFor(call.request.service ?? '') });
      },
      Watch: (call: grpc.ServerWritableStream<{ service?: string }, { status: string }>) => {
        const status = this.statusFor(call.request.service ?? '');
        call.write({ status });
        this.watchers.set(call, status);
        call.on('cancelled', () => this.watchers.delete(call));
        call.on('close', () => this.watchers.delete(call));
      },
    });
  }

  statusFor(service: string): ServingStatus {
    if (!HEALTH_SERVICES.has(service)) return 'SERVICE_UNKNOWN';
    return this.options.isServing() ? 'SERVING' : 'NOT_SERVING';
  }

  /** Push the status to Watch calls whose status changed (call after a readiness change); the health spec sends a message only on a change. */
  notifyHealth(): void {
    for (const [w, last] of this.watchers) {
      const status = this.statusFor(w.request.service ?? '');
      if (status === last) continue;
      this.watchers.set(w, status);
      w.write({ status });
    }
  }

  bind(host: string, port: number): Promise<number> {
    const creds = this.options.credentials ?? grpc.ServerCredentials.createInsecure();
    const address = host.includes(':') && !host.startsWith('[') ? `[${host}]:${port}` : `${host}:${port}`;
    return new Promise((resolve, reject) => {
      this.server.bindAsync(address, creds, (err, boundPort) => (err ? reject(err) : resolve(boundPort)));
    });
  }

  close(graceMs = 2000): Promise<void> {
    this.pending.stop();
    for (const w of this.watchers.keys()) w.end();
    this.watchers.clear();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, graceMs);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

export function checkRequestLimits(t: Pick<TransportConfig, 'maxRequestBytes'>): CheckRequestLimits {
  return { ...DEFAULT_CHECK_REQUEST_LIMITS, maxRequestBytes: t.maxRequestBytes };
}

/**
 * The Authorization service with our CheckRequest decoder (limits enforced
 * while reading; never throws) and our one-pass CheckResponse encoder.
 */
function boundedAuthorizationService(limits: CheckRequestLimits): grpc.ServiceDefinition {
  const service = authorizationService().service;
  return {
    ...service,
    Check: {
      ...service.Check,
      requestDeserialize: checkRequestDeserializer(limits),
      responseSerialize: encodeCheckResponse as (value: unknown) => Buffer,
    },
  };
}
