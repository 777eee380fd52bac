import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/load-config.js';
import { grpcServerOptions } from '../../src/server/grpc-transport.js';

describe('transport limits in the config', () => {
  it('has documented defaults, passed to grpc-js as its options', () => {
    const c = loadConfig({ env: {} });
    expect(c.maxRequestBytes).toBe(1024 * 1024);
    expect(grpcServerOptions(c, [])).toMatchObject({
      'grpc.max_receive_message_length': 1024 * 1024,
      'grpc.max_concurrent_streams': 1000,
      'grpc-node.max_session_memory': 64,
      'grpc.max_connection_idle_ms': 300_000,
      'grpc.max_connection_age_ms': 1_800_000,
      'grpc.max_connection_age_grace_ms': 30_000,
      'grpc.keepalive_time_ms': 7_200_000,
      'grpc.keepalive_timeout_ms': 20_000,
    });
    expect(c.maxPendingRequestBytes).toBe(64 * 1024 * 1024);
    expect(c.grpcMaxHeaderListBytes).toBe(16 * 1024);
    expect(c.grpcReceiveTimeout).toBe(10_000);
  });

  it('serves on http2 unless --transport grpc-js is asked for', () => {
    expect(loadConfig({ env: {} }).transport).toBe('http2');
    expect(loadConfig({ env: { AUTHZ_TRANSPORT: 'grpc-js' } }).transport).toBe('grpc-js');
    expect(loadConfig({ env: {}, flags: { transport: 'grpc-js' } }).transport).toBe('grpc-js');
  });

  it('reads flags and environment', () => {
    const c = loadConfig({
      env: { AUTHZ_MAX_REQUEST_BYTES: '8388608', AUTHZ_GRPC_MAX_CONNECTION_AGE: '1h' },
      flags: { grpcReceiveTimeout: '2s' },
    });
    expect(c.maxRequestBytes).toBe(8 * 1024 * 1024);
    expect(c.grpcMaxConnectionAge).toBe(3_600_000);
    expect(c.grpcReceiveTimeout).toBe(2000);
  });

  const bad = [
    {
      env: { AUTHZ_MAX_REQUEST_BYTES: '1e6' },
      error: /maxRequestBytes: expected a whole number from 4096 to 67108864, got "1e6"/,
    },
    { env: { AUTHZ_MAX_REQUEST_BYTES: '100' }, error: /maxRequestBytes/ },
    { env: { AUTHZ_GRPC_MAX_CONCURRENT_STREAMS: '0' }, error: /grpcMaxConcurrentStreams/ },
    { env: { AUTHZ_GRPC_RECEIVE_TIMEOUT: 'soon' }, error: /grpcReceiveTimeout: expected a duration/ },
    { env: { AUTHZ_GRPC_MAX_CONNECTION_IDLE: '10ms' }, error: /grpcMaxConnectionIdle: must be at least 1000ms/ },
    { env: { AUTHZ_TRANSPORT: 'h3' }, error: /transport: must be one of grpc-js, http2/ },
  ];
  for (const row of bad) {
    it(`refuses ${JSON.stringify(row.env)} naming the field`, () => {
      expect(() => loadConfig({ env: row.env })).toThrow(ConfigError);
      expect(() => loadConfig({ env: row.env })).toThrow(row.error);
    });
  }
});
