/**
 * Pick and build the BundleSource a Config asks for: the S3 store when
 * `bucket` and `bundle` are set, the policy directory otherwise. Settings that
 * can only be checked against the world (the key file, a writable state dir)
 * are checked here, at start-up, and fail it with the field's name.
 */
import type { Logger } from 'pino';
import { ConfigError } from '../config/load-config.js';
import type { Config } from '../config/schema.js';
import type { AuthzMetrics } from '../observability/metrics.js';
import type { ActivePolicySet } from './active-policy-set.js';
import type { BundleSource } from './bundle-source.js';
import { BundleStore } from './bundle-store.js';
import { DirectoryBundleSource } from './directory-source.js';
import { LastGoodStore } from './last-good.js';
import { createS3Client } from './s3-client.js';
import { S3BundleSyncer } from './s3-bundle-syncer.js';
import { loadVerifyKeys } from './signature.js';
import { redactUrl } from '../observability/redaction.js';
import { ShadowVersionLoader } from '../shadow/shadow-version-loader.js';

export interface SourceDeps {
  policySet: ActivePolicySet;
  metrics: AuthzMetrics;
  logger: Logger;
  /** Filled with the pointer's shadow version (S3 source only). */
  shadowVersion?: ActivePolicySet;
}

/** The poller retries on its own schedule; one SDK retry smooths over a dropped connection. */
const SYNC_MAX_ATTEMPTS = 2;

export async function createBundleSource(config: Config, deps: SourceDeps): Promise<BundleSource> {
  if (!config.bucket || !config.bundle) return new DirectoryBundleSource(config.policies, deps.policySet, config.policiesSettle);

  let verifyKey;
  if (config.verifyKey) {
    try {
      verifyKey = loadVerifyKeys(config.verifyKey);
    } catch (err) {
      throw new ConfigError(`invalid configuration:\n  verifyKey: ${(err as Error).message}`);
    }
  }
  let lastGood;
  if (config.stateDir) {
    lastGood = new LastGoodStore(config.stateDir, config.bundle);
    try {
      await lastGood.ensureWritable();
    } catch (err) {
      throw new ConfigError(`invalid configuration:\n  stateDir: ${config.stateDir} is not a writable directory: ${(err as Error).message}`);
    }
  }
  const s3 = createS3Client({
    endpoint: config.s3Endpoint,
    region: config.s3Region,
    forcePathStyle: config.s3ForcePathStyle,
    maxAttempts: SYNC_MAX_ATTEMPTS,
  });
  const store = new BundleStore(s3, { bucket: config.bucket, prefix: config.prefix, bundle: config.bundle });
  const { shadowVersion, ...syncDeps } = deps;
  const signedNotBefore = config.signedNotBefore;
  const shadowLoader = shadowVersion
    ? new ShadowVersionLoader({ store, shadowVersion, logger: deps.logger, metrics: deps.metrics, verifyKey, signedNotBefore })
    : undefined;
  const syncer = new S3BundleSyncer({
    store,
    ...syncDeps,
    onPolled: shadowLoader ? (pointer) => shadowLoader.onPolled(pointer) : undefined,
    pollIntervalMs: config.pollInterval,
    verifyKey,
    signedNotBefore,
    lastGood,
    // Shown on /bundle and in the start-up log: never the endpoint's user info or secret query parameters.
    details: { endpoint: config.s3Endpoint ? redactUrl(config.s3Endpoint) : 'aws', state_dir: config.stateDir ?? null },
  });
  // The syncer owns the client: stopping it also closes the client's sockets.
  return {
    kind: syncer.kind,
    start: () => syncer.start(),
    stop: async () => {
      await syncer.stop();
      await shadowLoader?.stop();
      s3.destroy();
    },
    describe: () => (shadowLoader ? { ...syncer.describe(), shadow: shadowLoader.describe() } : syncer.describe()),
  };
}
