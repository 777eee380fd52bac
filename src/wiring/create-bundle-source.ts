/**
 * Pick and build the BundleSource a Config asks for: the S3 store when
 * `bucket` and `bundle` are set, the policy directory otherwise. Settings that
 * can only be checked against the world (the key file, a writable state dir)
 * are checked here, at start-up, and fail it with the field's name.
 */
import type { Logger } from 'pino';
import { ConfigError } from '../config/load-config.js';
import { pollIntervalOf, type Config } from '../config/schema.js';
import type { AuthzMetrics } from '../observability/metrics.js';
import type { ActivePolicySet } from '../bundle/active-policy-set.js';
import type { BundleSource } from '../bundle/sources/bundle-source.js';
import { BundleStore } from '../bundle/store/bundle-store.js';
import { DirectoryBundleSource } from '../bundle/sources/directory-source.js';
import { LastGoodStore } from '../bundle/sources/last-good.js';
import { createS3Client } from '../bundle/store/s3-client.js';
import { S3BundleSyncer } from '../bundle/sources/s3-bundle-syncer.js';
import { loadVerifyKeys } from '../bundle/format/signature.js';
import { redactUrl } from '../observability/redaction.js';
import { ShadowVersionLoader } from '../bundle/sources/shadow-version-loader.js';
import { checkNotifyFiles, notifySettingsOf, NotifyError } from '../bundle/notify/notify-connection.js';
import { ServerPush } from '../bundle/notify/server-push.js';

export interface SourceDeps {
  policySet: ActivePolicySet;
  metrics: AuthzMetrics;
  logger: Logger;
  /** Filled with the pointer's shadow version (S3 source only). */
  shadowVersion?: ActivePolicySet;
  /** Readiness as /readyz reports it (the fleet heartbeat carries it); a set is active, by default. */
  isReady?: () => boolean;
  /** The live server count the fleet heartbeat reads (only with notify): rate limit shares. */
  onFleetSize?: (servers: number) => void;
}

/** The poller retries on its own schedule; one SDK retry smooths over a dropped connection. */
const SYNC_MAX_ATTEMPTS = 2;

export async function createBundleSource(config: Config, deps: SourceDeps): Promise<BundleSource> {
  if (!config.bucket || !config.bundle)
    return new DirectoryBundleSource(config.policies, deps.policySet, config.policiesSettle);

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
      throw new ConfigError(
        `invalid configuration:\n  stateDir: ${config.stateDir} is not a writable directory: ${(err as Error).message}`,
      );
    }
  }
  const s3 = createS3Client({
    endpoint: config.s3Endpoint,
    region: config.s3Region,
    forcePathStyle: config.s3ForcePathStyle,
    maxAttempts: SYNC_MAX_ATTEMPTS,
  });
  const store = new BundleStore(s3, { bucket: config.bucket, prefix: config.prefix, bundle: config.bundle });
  const { shadowVersion, isReady, ...syncDeps } = deps;
  const signedNotBefore = config.signedNotBefore;
  const shadowLoader = shadowVersion
    ? new ShadowVersionLoader({
        store,
        shadowVersion,
        logger: deps.logger,
        metrics: deps.metrics,
        verifyKey,
        signedNotBefore,
      })
    : undefined;
  const syncer = new S3BundleSyncer({
    store,
    ...syncDeps,
    onPolled: shadowLoader ? (pointer) => shadowLoader.onPolled(pointer) : undefined,
    pollIntervalMs: pollIntervalOf(config),
    verifyKey,
    signedNotBefore,
    lastGood,
    // Shown on /bundle and in the start-up log: never the endpoint's user info or secret query parameters.
    details: { endpoint: config.s3Endpoint ? redactUrl(config.s3Endpoint) : 'aws', state_dir: config.stateDir ?? null },
  });
  const push = serverPush(config, store, syncer, deps, shadowLoader, isReady);
  // The syncer owns the client: stopping it also closes the client's sockets.
  return {
    kind: syncer.kind,
    start: async () => {
      await syncer.start();
      // After the first sync: NATS is an accelerator, never a condition for serving.
      push?.start();
    },
    stop: async () => {
      await push?.stop();
      await syncer.stop();
      await shadowLoader?.stop();
      s3.destroy();
    },
    describe: () => ({
      ...syncer.describe(),
      ...(shadowLoader ? { shadow: shadowLoader.describe() } : {}),
      push: push ? push.describe() : { kind: 'none', poll_only: true },
    }),
    confirmedAt: () => syncer.lastConfirmedAt,
  };
}

/** The NATS push channel and fleet heartbeat, when `notify` is set. */
function serverPush(
  config: Config,
  store: BundleStore,
  syncer: S3BundleSyncer,
  deps: SourceDeps,
  shadowLoader: ShadowVersionLoader | undefined,
  isReady: (() => boolean) | undefined,
): ServerPush | undefined {
  const settings = notifySettingsOf(config);
  if (!settings) return undefined;
  const { policySet } = deps;
  let push: ServerPush;
  try {
    checkNotifyFiles(settings);
    push = new ServerPush({
      settings,
      location: store.location,
      logger: deps.logger,
      metrics: deps.metrics,
      nudge: (hint) => syncer.nudge(hint),
      onFleetSize: deps.onFleetSize,
      facts: () => {
        const set = policySet.current;
        const active = syncer.describe().bundle as { version: string; sha256: string } | null;
        return {
          version: set?.version ?? null,
          sha256: active && set && active.version === set.version ? active.sha256 : null,
          shadow_version: (shadowLoader?.describe().version as string | null | undefined) ?? null,
          policies: set?.policySet.policies.size ?? 0,
          ready: isReady ? isReady() : set !== null,
          last_sync: syncer.lastConfirmedAt?.toISOString() ?? null,
          last_error: policySet.lastError?.message ?? null,
        };
      },
    });
  } catch (err) {
    if (err instanceof NotifyError) throw new ConfigError(`invalid configuration:\n  ${err.message}`);
    throw err;
  }
  // Report a swap (or a refusal) at once, so `bundle activate --wait` sees it without waiting for the next beat.
  // After the syncer has recorded the bundle's sha256, which happens just after the swap.
  const beatSoon = (): void => void setImmediate(() => push.heartbeat());
  policySet.observe({ onActivated: beatSoon, onRefused: beatSoon });
  deps.shadowVersion?.observe({ onActivated: beatSoon });
  return push;
}
