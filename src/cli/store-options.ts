/**
 * The store flags shared by `bundle push|activate|rollback|list`. They are
 * the same keys as `serve` (flags, AUTHZ_* environment, --config file), so a
 * publisher and the servers can read one config file.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { kebabToCamel, loadConfig } from '../config/load-config.js';
import { DEFAULT_BUNDLE_PREFIX } from '../config/schema.js';
import { BundleStore } from '../bundle/store/bundle-store.js';
import { createS3Client } from '../bundle/store/s3-client.js';
import { loadVerifyKeys, type VerifyKeys } from '../bundle/format/signature.js';
import { notifySettingsOf, type NotifySettings } from '../bundle/notify/notify-connection.js';
import { UsageError, type OptionSpec } from './command-framework.js';

/** The store's flags, as `serve` has them too. */
export const S3_STORE_OPTIONS: Record<string, OptionSpec> = {
  's3-endpoint': { type: 'string', description: 'S3-compatible endpoint URL (absent: AWS S3)', valueName: 'URL' },
  bucket: { type: 'string', description: 'Bucket holding the bundles', valueName: 'BUCKET' },
  prefix: { type: 'string', description: `Key prefix (default ${DEFAULT_BUNDLE_PREFIX})`, valueName: 'PREFIX' },
  bundle: { type: 'string', description: 'Bundle name', valueName: 'NAME' },
  's3-region': {
    type: 'string',
    description: 'Signing region (default: AWS chain, us-east-1 with an endpoint)',
    valueName: 'REGION',
  },
  's3-force-path-style': { type: 'boolean', description: 'Path-style URLs (the default when --s3-endpoint is given)' },
};

/** The NATS push channel's flags, as `serve` has them too. */
export const NOTIFY_OPTIONS: Record<string, OptionSpec> = {
  notify: {
    type: 'string',
    description: 'NATS URL(s), e.g. nats://nats:4222: push changes to servers at once (absent: servers poll)',
    valueName: 'URL',
  },
  'notify-creds': { type: 'string', description: 'NATS credentials file (.creds)', valueName: 'FILE' },
  'notify-tls-ca': {
    type: 'string',
    description: "PEM CA bundle for the NATS server's certificate",
    valueName: 'FILE',
  },
  'notify-tls-cert': {
    type: 'string',
    description: 'PEM client certificate for NATS (with --notify-tls-key)',
    valueName: 'FILE',
  },
  'notify-tls-key': { type: 'string', description: 'PEM private key for --notify-tls-cert', valueName: 'FILE' },
};

export const STORE_OPTIONS: Record<string, OptionSpec> = {
  ...S3_STORE_OPTIONS,
  ...NOTIFY_OPTIONS,
  config: {
    type: 'string',
    description: 'YAML config file with the same keys as serve (also AUTHZ_CONFIG)',
    valueName: 'FILE',
  },
};

export const STORE_DETAILS =
  'Store settings are also environment variables (AUTHZ_BUCKET, AUTHZ_BUNDLE, AUTHZ_S3_ENDPOINT, ...) and keys of the --config file.\n' +
  'Credentials come from the standard AWS chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, SSO, instance roles).';

export interface OpenedStore {
  store: BundleStore;
  s3: S3Client;
  /** The NATS push channel, when --notify (or AUTHZ_NOTIFY, or the config file) names one. */
  notify?: NotifySettings;
}

export function storeFromFlags(values: Record<string, unknown>): OpenedStore {
  const flags: Record<string, unknown> = {};
  for (const k of [...Object.keys(S3_STORE_OPTIONS), ...Object.keys(NOTIFY_OPTIONS)])
    if (values[k] !== undefined) flags[kebabToCamel(k)] = values[k];
  const config = loadConfig({ flags, file: values.config as string | undefined });
  if (!config.bucket || !config.bundle)
    throw new UsageError('needs --bucket and --bundle (or AUTHZ_BUCKET and AUTHZ_BUNDLE)');
  const s3 = createS3Client({
    endpoint: config.s3Endpoint,
    region: config.s3Region,
    forcePathStyle: config.s3ForcePathStyle,
  });
  return {
    s3,
    store: new BundleStore(s3, { bucket: config.bucket, prefix: config.prefix, bundle: config.bundle }),
    notify: notifySettingsOf(config),
  };
}

/** 2048 → "2.0 KiB". */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** `--verify-key PUB` (repeatable: one file per key during a rotation), as the commands that check signatures take it. */
export const VERIFY_KEY_OPTION: OptionSpec = {
  type: 'string',
  multiple: true,
  description:
    'Refuse unless the version is signed by this Ed25519 public key (PEM; one per file, several during a rotation)',
  valueName: 'PUB',
};

export function verifyKeysFromFlag(value: unknown): VerifyKeys | undefined {
  const files = (Array.isArray(value) ? value : value === undefined ? [] : [value]) as string[];
  return files.length > 0 ? loadVerifyKeys(files) : undefined;
}
