/**
 * `serve` options bounding the gRPC listener (docs/hardening.md). Each is also
 * an AUTHZ_* environment variable and a camelCase key of the YAML config file.
 */
import type { OptionSpec } from './command-framework.js';

export const TRANSPORT_OPTIONS: Record<string, OptionSpec> = {
  transport: {
    type: 'string',
    description:
      'gRPC server for Check, Health and reflection: http2 (our own, on node:http2) or grpc-js (default http2)',
    valueName: 'NAME',
  },
  'max-request-bytes': {
    type: 'string',
    description: 'Largest CheckRequest decoded; larger ones are 431 denies (default 1048576)',
    valueName: 'BYTES',
  },
  'max-pending-request-bytes': {
    type: 'string',
    description:
      'Half-received request bytes held over all connections; past it the largest is dropped (default 64 MiB)',
    valueName: 'BYTES',
  },
  'grpc-max-concurrent-streams': {
    type: 'string',
    description: 'HTTP/2 streams per connection (default 1000)',
    valueName: 'N',
  },
  'grpc-max-header-list-bytes': {
    type: 'string',
    description: 'HTTP/2 header list size per request; larger ones are reset (default 16384)',
    valueName: 'BYTES',
  },
  'grpc-max-session-memory': {
    type: 'string',
    description: 'node:http2 memory per connection in MiB (default 64)',
    valueName: 'MIB',
  },
  'grpc-receive-timeout': {
    type: 'string',
    description: "Time from a call's headers to its complete message (default 10s)",
    valueName: 'DURATION',
  },
  'grpc-max-connection-idle': {
    type: 'string',
    description: 'Close connections idle this long (default 5m)',
    valueName: 'DURATION',
  },
  'grpc-max-connection-age': {
    type: 'string',
    description: 'Recycle connections at this age (default 30m)',
    valueName: 'DURATION',
  },
  'grpc-max-connection-age-grace': {
    type: 'string',
    description: 'Time calls in flight get after the age is reached (default 30s)',
    valueName: 'DURATION',
  },
  'grpc-keepalive-time': {
    type: 'string',
    description: 'Ping a quiet client this often (default 2h)',
    valueName: 'DURATION',
  },
  'grpc-keepalive-timeout': {
    type: 'string',
    description: 'Drop a client that does not answer a ping this fast (default 20s)',
    valueName: 'DURATION',
  },
};
