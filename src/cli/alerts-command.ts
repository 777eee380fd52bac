/**
 * `authz alerts serve`: Alertmanager's webhook switches the fleet's mode
 * (see src/alerts/alert-receiver.ts and docs/safety.md "Alert-driven modes").
 */
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { AlertModeState } from '../alerts/alert-mode-state.js';
import { AlertReceiver, type TlsFiles } from '../alerts/alert-receiver.js';
import { AlertRulesError, loadAlertRules } from '../alerts/alert-rules.js';
import { dryRunModeApplier, storeModeApplier, type PointerAnnouncer } from '../alerts/mode-appliers.js';
import { describeServers } from '../bundle/notify/notify-connection.js';
import { publishPointer } from '../bundle/notify/pointer-channel.js';
import { loadSigningKey, SignatureKeyError } from '../bundle/format/signature.js';
import { parseDurationMs } from '../config/duration.js';
import { parseHostPort } from '../config/host-port.js';
import { createLogger, flushLogger } from '../observability/logger.js';
import type { Command } from './command-framework.js';
import { UsageError } from './command-framework.js';
import {
  STORE_DETAILS,
  STORE_OPTIONS,
  storeFromFlags,
  VERIFY_KEY_OPTION,
  verifyKeysFromFlag,
  type OpenedStore,
} from './store-options.js';

/** Long enough that an alert resolving and firing again within a scrape or two does not flip the fleet twice. */
export const DEFAULT_HOLD_DOWN = '2m';
const MAX_HOLD_DOWN_MS = 24 * 3_600_000;

export interface RunningAlertReceiver {
  receiver: AlertReceiver;
  port: number;
  close(): Promise<void>;
}

/** Everything `alerts serve` does before waiting for a signal; a bad flag or file stops here with one line. */
export async function openAlertReceiver(
  values: Record<string, unknown>,
  logger?: Logger,
): Promise<RunningAlertReceiver> {
  const listen = parseHostPort((values.listen as string | undefined) ?? '');
  if (!listen)
    throw new UsageError(
      `--listen needs HOST:PORT (e.g. 0.0.0.0:9095)${values.listen ? `, got "${String(values.listen)}"` : ''}`,
    );
  if (!values.rules) throw new UsageError('needs --rules FILE (which alerts switch to which mode)');
  const holdRaw = (values['hold-down'] as string | undefined) ?? DEFAULT_HOLD_DOWN;
  const holdDownMs = parseDurationMs(holdRaw);
  if (holdDownMs === undefined || holdDownMs > MAX_HOLD_DOWN_MS)
    throw new UsageError(`--hold-down "${holdRaw}" must be a duration such as 30s or 2m (at most 24h)`);
  let rules;
  try {
    rules = loadAlertRules(values.rules as string);
  } catch (err) {
    if (err instanceof AlertRulesError) throw new UsageError(err.message);
    throw err;
  }
  const token = values['token-file'] ? readToken(values['token-file'] as string) : undefined;
  const tls = tlsFiles(values);
  // Fail closed: a receiver anyone on the network could drive would let anyone lift high-alert.
  if (!token && !tls?.clientCa)
    throw new UsageError(
      'needs --token-file FILE or mTLS (--tls-cert, --tls-key, --tls-client-ca): unauthenticated senders must not switch the mode',
    );

  let keys;
  try {
    keys = {
      signKey: values['sign-key'] ? loadSigningKey(values['sign-key'] as string) : undefined,
      verifyKey: verifyKeysFromFlag(values['verify-key']),
    };
  } catch (err) {
    if (err instanceof SignatureKeyError) throw new UsageError(err.message);
    throw err;
  }
  const opened = storeFromFlags(values);
  const log = logger ?? createLogger({ level: ((values['log-level'] as string | undefined) ?? 'info') as 'info' });
  const receiver = new AlertReceiver({
    state: new AlertModeState(rules, holdDownMs),
    applier: values['dry-run']
      ? dryRunModeApplier(opened.store)
      : storeModeApplier(opened.store, keys, pushAnnouncer(opened)),
    auth: { token, mtls: !!tls?.clientCa },
    tls,
    logger: log,
  });
  let port: number;
  try {
    port = await receiver.listen(listen.host, listen.port);
  } catch (err) {
    opened.s3.destroy();
    throw new UsageError(`--listen ${listen.host}:${listen.port}: ${(err as Error).message}`);
  }
  log.info(
    {
      listen: `${listen.host}:${port}`,
      rules: rules.length,
      hold_down_ms: holdDownMs,
      dry_run: !!values['dry-run'],
      auth: [token ? 'bearer' : null, tls?.clientCa ? 'mtls' : null].filter(Boolean),
      bundle: opened.store.location.bundle,
    },
    'alert receiver listening',
  );
  return {
    receiver,
    port,
    async close() {
      await receiver.close();
      opened.s3.destroy();
      if (!logger) await flushLogger(log);
    },
  };
}

/** With --notify: servers hear of the switch at once instead of at their next poll; a failed push only delays them. */
function pushAnnouncer(opened: OpenedStore): PointerAnnouncer | undefined {
  const settings = opened.notify;
  if (!settings) return undefined;
  return async (pointer) => {
    try {
      await publishPointer(settings, opened.store.location, pointer);
      return `pushed to ${describeServers(settings)}`;
    } catch (err) {
      return `push to ${describeServers(settings)} failed (${(err as Error).message}); servers converge by polling`;
    }
  };
}

function readToken(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(
      `--token-file ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : (err as Error).message}`,
    );
  }
  const token = text.trim();
  if (token.length < 16 || /\s/.test(token))
    throw new UsageError(`--token-file ${file}: expected one token of at least 16 characters without spaces`);
  return token;
}

function tlsFiles(values: Record<string, unknown>): TlsFiles | undefined {
  const cert = values['tls-cert'] as string | undefined;
  const key = values['tls-key'] as string | undefined;
  const ca = values['tls-client-ca'] as string | undefined;
  if (!cert && !key && !ca) return undefined;
  if (!cert || !key) throw new UsageError('--tls-cert and --tls-key must be given together');
  const read = (flag: string, file: string) => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new UsageError(`--${flag} ${file}: ${(err as Error).message}`);
    }
  };
  return {
    cert: read('tls-cert', cert),
    key: read('tls-key', key),
    clientCa: ca ? read('tls-client-ca', ca) : undefined,
  };
}

export const alertsServeCommand: Command = {
  path: ['alerts', 'serve'],
  summary: "receive Alertmanager webhooks and switch the fleet's mode by rules (high-alert while mapped alerts fire)",
  usage:
    'alerts serve --listen HOST:PORT --rules FILE (--token-file FILE | --tls-cert C --tls-key K --tls-client-ca CA) [--hold-down 2m] [--dry-run] <store flags>',
  options: {
    listen: {
      type: 'string',
      description: 'Address for the webhook (POST / or /alerts), GET /status and /metrics',
      valueName: 'HOST:PORT',
    },
    rules: {
      type: 'string',
      description: 'YAML: rules: [{alert: NAME, labels: {k: v}, mode: high-alert}]',
      valueName: 'FILE',
    },
    'token-file': {
      type: 'string',
      description:
        "File holding the bearer token senders must present (Alertmanager's http_config.authorization.credentials_file)",
      valueName: 'FILE',
    },
    'hold-down': {
      type: 'string',
      description: `How long every mapped alert must stay resolved before normal returns (default ${DEFAULT_HOLD_DOWN})`,
      valueName: 'DURATION',
    },
    'dry-run': { type: 'boolean', description: 'Log and answer what would change; publish nothing' },
    'tls-cert': { type: 'string', description: 'PEM certificate: serve HTTPS', valueName: 'FILE' },
    'tls-key': { type: 'string', description: 'PEM private key for --tls-cert', valueName: 'FILE' },
    'tls-client-ca': {
      type: 'string',
      description: 'PEM CA: a client certificate it signed authenticates the sender (mTLS)',
      valueName: 'FILE',
    },
    'log-level': { type: 'string', description: 'info|warn|error|debug (default info)', valueName: 'LEVEL' },
    'sign-key': {
      type: 'string',
      description: 'Ed25519 private key (PEM) to sign the derived versions (needed when servers run --verify-key)',
      valueName: 'KEY',
    },
    'verify-key': VERIFY_KEY_OPTION,
    ...STORE_OPTIONS,
  },
  details:
    'A mapped alert firing publishes (through the same store path as `authz mode set`) a version in its mode; when every mapped\n' +
    'alert has resolved and the hold-down has passed, normal returns. Each switch writes an audit record naming the alert, its\n' +
    'fingerprint and the sender (`authz bundle history`). Unauthenticated posts get 401 and change nothing.\n' +
    STORE_DETAILS,
  async run(values) {
    const running = await openAlertReceiver(values);
    await new Promise<void>((resolve) => {
      process.once('SIGTERM', () => resolve());
      process.once('SIGINT', () => resolve());
    });
    await running.close();
    return 0;
  },
};
