/** The real authz server, configured for the S3 source against a TestS3Store. */
import { loadConfig } from '../../src/config/load-config.js';
import { startAuthzServer, type RunningServer } from '../../src/server/authz-server.js';
import { TEST_BUCKET, type TestS3Store } from './s3rver-store.js';

export const TEST_POLL_INTERVAL_MS = 200;

export function startS3Server(s3: TestS3Store, bundle: string, flags: Record<string, unknown> = {}): Promise<RunningServer> {
  const config = loadConfig({
    flags: {
      listen: '127.0.0.1:0',
      admin: '127.0.0.1:0',
      logLevel: 'silent',
      s3Endpoint: s3.endpoint,
      bucket: TEST_BUCKET,
      bundle,
      pollInterval: `${TEST_POLL_INTERVAL_MS}ms`,
      ...flags,
    },
    env: {},
  });
  return startAuthzServer(config);
}
