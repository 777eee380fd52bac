/**
 * grpc-js wiring: the Authorization service and the standard Health service.
 */
import type { PeerCertificate } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { authorizationService, AUTHORIZATION_SERVICE_NAME, healthService } from '../envoy/protos.js';
import type { WireCheckRequest, WireCheckResponse } from '../envoy/wire-types.js';
import type { CheckHandler } from './check-handler.js';

export type ServingStatus = 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';

/** Services the health endpoint knows; "" is the whole server. */
const HEALTH_SERVICES = new Set(['', AUTHORIZATION_SERVICE_NAME]);

/** Envoy sends CheckRequests of a few KiB; bodies (with_request_body) can be larger. */
export const MAX_RECEIVE_MESSAGE_BYTES = 8 * 1024 * 1024;

export interface GrpcServerOptions {
  handler: CheckHandler;
  isServing: () => boolean;
  credentials?: grpc.ServerCredentials;
  /** `--allowed-callers`: a message when this call's peer may not ask for decisions (answered UNAUTHENTICATED). */
  refuseCaller?: (auth: { sslPeerCertificate?: PeerCertificate } | null) => string | undefined;
}

export class GrpcServer {
  readonly server: grpc.Server;
  private readonly watchers = new Set<grpc.ServerWritableStream<{ service?: string }, { status: string }>>();

  constructor(private readonly options: GrpcServerOptions) {
    this.server = new grpc.Server({
      'grpc.max_receive_message_length': MAX_RECEIVE_MESSAGE_BYTES,
      'grpc.keepalive_permit_without_calls': 1,
    });
    const handler = options.handler;
    const refuseCaller = options.refuseCaller;
    this.server.addService(authorizationService().service, {
      Check: (call: grpc.ServerUnaryCall<WireCheckRequest, WireCheckResponse>, callback: grpc.sendUnaryData<WireCheckResponse>) => {
        const refused = refuseCaller?.(call.getAuthContext());
        if (refused !== undefined) return callback({ code: grpc.status.UNAUTHENTICATED, details: refused });
        const answer = handler.handle(call.request, call.getDeadline());
        // A promise only when a bearer token is verified for the first time; the handler never rejects.
        if (answer instanceof Promise) answer.then((r) => callback(null, r), (err: Error) => callback(err));
        else callback(null, answer);
      },
    });
    this.server.addService(healthService().service, {
      Check: (call: grpc.ServerUnaryCall<{ service?: string }, { status: string }>, callback: grpc.sendUnaryData<{ status: string }>) => {
        callback(null, { status: this.statusFor(call.request.service ?? '') });
      },
      Watch: (call: grpc.ServerWritableStream<{ service?: string }, { status: string }>) => {
        call.write({ status: this.statusFor(call.request.service ?? '') });
        this.watchers.add(call);
        call.on('cancelled', () => this.watchers.delete(call));
        call.on('close', () => this.watchers.delete(call));
      },
    });
  }

  statusFor(service: string): ServingStatus {
    if (!HEALTH_SERVICES.has(service)) return 'SERVICE_UNKNOWN';
    return this.options.isServing() ? 'SERVING' : 'NOT_SERVING';
  }

  /** Push the current status to Watch streams (call after a readiness change). */
  notifyHealth(): void {
    for (const w of this.watchers) w.write({ status: this.statusFor(w.request.service ?? '') });
  }

  bind(host: string, port: number): Promise<number> {
    const creds = this.options.credentials ?? grpc.ServerCredentials.createInsecure();
    const address = host.includes(':') && !host.startsWith('[') ? `[${host}]:${port}` : `${host}:${port}`;
    return new Promise((resolve, reject) => {
      this.server.bindAsync(address, creds, (err, boundPort) => (err ? reject(err) : resolve(boundPort)));
    });
  }

  close(graceMs = 2000): Promise<void> {
    for (const w of this.watchers) w.end();
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
