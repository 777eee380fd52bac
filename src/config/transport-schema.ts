/**
 * Bounds on what one caller can make the gRPC listener hold: message size,
 * HTTP/2 streams, header lists, memory of half-received messages, idle and
 * old connections. Spread into the one config schema in schema.ts; the
 * defaults are documented in docs/hardening.md.
 */
import { z } from 'zod';
import { DEFAULT_MAX_REQUEST_BYTES } from '../envoy/check-request-limits.js';
import { parseDurationMs } from './duration.js';
import { wholeNumber } from './whole-number.js';

/** Envoy opens another connection when a connection's streams are all busy. */
export const DEFAULT_GRPC_MAX_CONCURRENT_STREAMS = 1000;
/** gRPC's own hard limit on metadata; Envoy's ext_authz call carries well under 2 KiB. */
export const DEFAULT_GRPC_MAX_HEADER_LIST_BYTES = 16 * 1024;
/** node:http2's per-connection budget (HPACK tables, header bytes, unsent output), in MiB. */
export const DEFAULT_GRPC_MAX_SESSION_MEMORY_MIB = 64;
/** All half-received request messages together; past it the largest is dropped. */
export const DEFAULT_MAX_PENDING_REQUEST_BYTES = 64 * 1024 * 1024;
/** From a call's headers to its complete message; Envoy sends both at once. */
export const DEFAULT_GRPC_RECEIVE_TIMEOUT_MS = 10_000;
/** A connection without calls for this long is closed with GOAWAY (Envoy reconnects on demand). */
export const DEFAULT_GRPC_MAX_CONNECTION_IDLE_MS = 5 * 60_000;
/** Connections are recycled at this age (GOAWAY, then the grace below for calls in flight). */
export const DEFAULT_GRPC_MAX_CONNECTION_AGE_MS = 30 * 60_000;
export const DEFAULT_GRPC_MAX_CONNECTION_AGE_GRACE_MS = 30_000;
/** grpc-js's own defaults: ping an idle client every 2 h, drop it if no answer in 20 s. */
export const DEFAULT_GRPC_KEEPALIVE_TIME_MS = 2 * 3_600_000;
export const DEFAULT_GRPC_KEEPALIVE_TIMEOUT_MS = 20_000;

// A local duration parser: importing schema.ts's would be a module cycle.
const durationMs = (min: number) =>
  z.union([z.string(), z.number()]).transform((s, ctx): number => {
    const ms = parseDurationMs(s);
    if (ms === undefined || ms < min) {
      ctx.addIssue({
        code: 'custom',
        message:
          ms === undefined ? `expected a duration such as 500ms, 2s or 1m, got "${s}"` : `must be at least ${min}ms`,
      });
      return z.NEVER;
    }
    return ms;
  });

const MIB = 1024 * 1024;

/** The gRPC servers the ext_authz port can run on (src/server/grpc-server.ts, src/server/http2-grpc-server.ts). */
export const TRANSPORTS = ['grpc-js', 'http2'] as const;
export type Transport = (typeof TRANSPORTS)[number];
/**
 * Chosen by `npm run bench -- --transports` (docs/performance.md, "Transports"): with the
 * same services (Check, Health Check and Watch, reflection) http2 served about twice the
 * repeated checks of grpc-js, with a lower p99. `--transport grpc-js` stays selectable.
 */
export const DEFAULT_TRANSPORT: Transport = 'http2';

export const transportConfigShape = {
  /** Which gRPC server answers Check and Health on the listen port. */
  transport: z.enum(TRANSPORTS, { error: () => `must be one of ${TRANSPORTS.join(', ')}` }).default(DEFAULT_TRANSPORT),
  /** Largest CheckRequest decoded; larger ones are 431 denies and are never buffered. */
  maxRequestBytes: wholeNumber(4096, 64 * MIB).default(DEFAULT_MAX_REQUEST_BYTES),
  /** Half-received request messages held at once, over all connections. */
  maxPendingRequestBytes: wholeNumber(64 * 1024, 4096 * MIB).default(DEFAULT_MAX_PENDING_REQUEST_BYTES),
  grpcMaxConcurrentStreams: wholeNumber(1, 1_000_000).default(DEFAULT_GRPC_MAX_CONCURRENT_STREAMS),
  grpcMaxHeaderListBytes: wholeNumber(1024, 1 * MIB).default(DEFAULT_GRPC_MAX_HEADER_LIST_BYTES),
  grpcMaxSessionMemory: wholeNumber(1, 4096).default(DEFAULT_GRPC_MAX_SESSION_MEMORY_MIB),
  grpcReceiveTimeout: durationMs(100).default(DEFAULT_GRPC_RECEIVE_TIMEOUT_MS),
  grpcMaxConnectionIdle: durationMs(1000).default(DEFAULT_GRPC_MAX_CONNECTION_IDLE_MS),
  grpcMaxConnectionAge: durationMs(1000).default(DEFAULT_GRPC_MAX_CONNECTION_AGE_MS),
  grpcMaxConnectionAgeGrace: durationMs(0).default(DEFAULT_GRPC_MAX_CONNECTION_AGE_GRACE_MS),
  grpcKeepaliveTime: durationMs(1000).default(DEFAULT_GRPC_KEEPALIVE_TIME_MS),
  grpcKeepaliveTimeout: durationMs(100).default(DEFAULT_GRPC_KEEPALIVE_TIMEOUT_MS),
};

export type TransportConfig = z.output<z.ZodObject<typeof transportConfigShape>>;
