/**
 * Incident and rollout controls, all through the bundle store so the whole
 * fleet follows within one poll interval and nothing restarts:
 *
 *   authz lockdown on|off|status     maintenance lockdown of one service's writes
 *   authz mode set high-alert|normal bundle.yaml mode (rate limits, context.mode)
 *   authz bundle shadow V | --clear  evaluate a candidate beside the active version
 *   authz bundle history             the audit trail those (and activate/rollback) write
 *
 * Exit code 0 on success (including "nothing to change"), 1 when the store or
 * a check refuses, 2 on usage errors.
 */
import { BundlePublishError } from '../operator/bundle-publish.js';
import { BundlePointerError, BundleStoreError, type BundleStore } from '../bundle/store/bundle-store.js';
import {
  actorName,
  DEFAULT_HISTORY_LIMIT,
  readHistory,
  recordHistory,
  type HistoryInput,
} from '../bundle/store/bundle-history.js';
import { loadSigningKey, SignatureKeyError } from '../bundle/format/signature.js';
import { PolicySetError } from '../cedar/compile.js';
import { loadActiveVersion, publishDerived, type DerivedPublishResult } from '../operator/derived-version.js';
import {
  DEFAULT_LOCKDOWN_RETRY_AFTER_S,
  defaultLockdownMessage,
  listLockdowns,
  LockdownError,
  parseMethods,
  resolveLockdownService,
  withLockdown,
  withoutLockdown,
} from '../operator/lockdown.js';
import { ModeError, parseMode, settingsOf } from '../operator/mode.js';
import { switchMode } from '../operator/mode-switch.js';
import { clearShadowVersion, setShadowVersion } from '../operator/shadow-pointer.js';
import type { Command, OptionSpec } from './command-framework.js';
import { UsageError } from './command-framework.js';
import {
  STORE_DETAILS,
  STORE_OPTIONS,
  storeFromFlags,
  VERIFY_KEY_OPTION,
  verifyKeysFromFlag,
  type OpenedStore,
} from './store-options.js';
import { announcePointer } from './push-notice.js';

/** --actor and --reason: who and why, for the audit record every change writes. */
export const AUDIT_OPTIONS: Record<string, OptionSpec> = {
  reason: { type: 'string', description: 'Why (recorded in the audit trail, bundle history)', valueName: 'TEXT' },
  actor: { type: 'string', description: 'Who (default $USER)', valueName: 'NAME' },
};

const PUBLISH_OPTIONS: Record<string, OptionSpec> = {
  'sign-key': {
    type: 'string',
    description: 'Ed25519 private key (PEM) to sign the derived version (needed when servers run --verify-key)',
    valueName: 'KEY',
  },
  'verify-key': VERIFY_KEY_OPTION,
};

/** Write the audit record for a change that happened; a failure to record is reported, and exits 1. */
export async function recordChange(
  store: BundleStore,
  values: Record<string, unknown>,
  record: Omit<HistoryInput, 'who' | 'why'>,
): Promise<number> {
  try {
    const key = await recordHistory(store, {
      ...record,
      who: actorName(values.actor as string | undefined),
      why: (values.reason as string | undefined) ?? null,
    });
    process.stdout.write(`audit record ${store.url(key)}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`the change is made, but its audit record could not be written: ${(err as Error).message}\n`);
    return 1;
  }
}

async function withStore(
  values: Record<string, unknown>,
  what: string,
  body: (store: BundleStore, opened: OpenedStore) => Promise<number>,
): Promise<number> {
  let opened: OpenedStore | undefined;
  try {
    opened = storeFromFlags(values);
    return await body(opened.store, opened);
  } catch (err) {
    if (
      err instanceof BundleStoreError ||
      err instanceof BundlePublishError ||
      err instanceof BundlePointerError ||
      err instanceof SignatureKeyError ||
      err instanceof PolicySetError ||
      err instanceof LockdownError ||
      err instanceof ModeError
    ) {
      process.stderr.write(`authz ${what}: ${err.message}\n`);
      return 1;
    }
    throw err;
  } finally {
    opened?.s3.destroy();
  }
}

function keys(values: Record<string, unknown>) {
  return {
    signKey: values['sign-key'] ? loadSigningKey(values['sign-key'] as string) : undefined,
    verifyKey: verifyKeysFromFlag(values['verify-key']),
  };
}

function published(store: BundleStore, r: DerivedPublishResult, base: string): string {
  return (
    `published ${store.location.bundle} ${r.version} (derived from ${base}, ${r.set.policySet.policies.size} policies) and activated it\n` +
    `servers polling ${store.url(store.pointerKey())} enforce it within their --poll-interval\n`
  );
}

function requireService(values: Record<string, unknown>): string {
  const service = values.service as string | undefined;
  if (!service) throw new UsageError('needs --service NAME (the Cedar resource, Service::"NAME")');
  return service;
}

export const lockdownOnCommand: Command = {
  path: ['lockdown', 'on'],
  summary: "pause a service's writes mesh-wide (503 + Retry-After); reads keep flowing",
  usage:
    'lockdown on --service S [--methods POST,PUT,PATCH,DELETE] [--message TEXT] [--retry-after N] [--reason TEXT] [--force] <store flags>',
  options: {
    service: {
      type: 'string',
      description: 'Service to lock down (Service::"S"; any host form of it, e.g. orders.shop.svc.cluster.local)',
      valueName: 'S',
    },
    force: { type: 'boolean', description: 'Lock down a service no policy, entity or services: entry knows' },
    methods: { type: 'string', description: 'Methods to refuse (default POST,PUT,PATCH,DELETE)', valueName: 'LIST' },
    message: {
      type: 'string',
      description: 'Message in the 503 body (default: "<S> is in maintenance: ...")',
      valueName: 'TEXT',
    },
    'retry-after': {
      type: 'string',
      description: `Retry-After seconds (default ${DEFAULT_LOCKDOWN_RETRY_AFTER_S})`,
      valueName: 'N',
    },
    ...AUDIT_OPTIONS,
    ...PUBLISH_OPTIONS,
    ...STORE_OPTIONS,
  },
  details:
    'Publishes a version derived from the active one with a generated forbid in lockdowns/<S>.cedar, and activates it.\n' +
    'S is resolved as requests are (lower-case, no port or trailing dot, services: aliases, Kubernetes forms), so\n' +
    'every way of writing the service is caught. A service nothing in the bundle knows is refused (exit 1) unless --force.\n' +
    STORE_DETAILS,
  async run(values) {
    const asked = requireService(values);
    const retryRaw = (values['retry-after'] as string | undefined) ?? String(DEFAULT_LOCKDOWN_RETRY_AFTER_S);
    if (!/^\d{1,9}$/.test(retryRaw))
      throw new UsageError(`--retry-after "${retryRaw}" must be a whole number of seconds`);
    return withStore(values, 'lockdown on', async (store, opened) => {
      const methods = parseMethods(values.methods as string | undefined);
      const base = await loadActiveVersion(store);
      const target = resolveLockdownService(base.files, asked);
      const service = target.service;
      if (service !== asked) process.stdout.write(`"${asked}" names Service::"${service}"\n`);
      if (!target.known) {
        const warning = `no policy, entity or services: entry in ${base.pointer.version} knows Service::"${service}": no request resolves to it, so the lockdown would change nothing (check the name)`;
        if (!values.force) {
          process.stderr.write(`authz lockdown on: ${warning}; pass --force to publish it anyway\n`);
          return 1;
        }
        process.stderr.write(`warning: ${warning}; publishing anyway (--force)\n`);
      }
      const at = new Date();
      const lockdown = {
        service,
        methods,
        message: (values.message as string | undefined) ?? defaultLockdownMessage(service),
        retryAfterSeconds: Number(retryRaw),
        by: actorName(values.actor as string | undefined),
        at: at.toISOString(),
        reason: (values.reason as string | undefined) ?? null,
      };
      const r = await publishDerived(store, base, withLockdown(base.files, lockdown), {
        tag: `lockdown-${service}`,
        now: at,
        ...keys(values),
      });
      process.stdout.write(
        `lockdown on ${service}: ${methods.join(', ')} answer 503 "${lockdown.message}" (Retry-After ${lockdown.retryAfterSeconds}); other methods are not affected\n` +
          published(store, r, base.pointer.version),
      );
      await announcePointer(opened, r.activation.pointer);
      return recordChange(store, values, {
        action: 'lockdown-on',
        from: base.pointer.version,
        to: r.version,
        details: { service, methods, message: lockdown.message, retry_after: lockdown.retryAfterSeconds },
      });
    });
  },
};

export const lockdownOffCommand: Command = {
  path: ['lockdown', 'off'],
  summary: "lift a service's lockdown (publishes and activates a version without it)",
  usage: 'lockdown off --service S [--reason TEXT] <store flags>',
  options: {
    service: { type: 'string', description: 'Service whose lockdown to lift', valueName: 'S' },
    ...AUDIT_OPTIONS,
    ...PUBLISH_OPTIONS,
    ...STORE_OPTIONS,
  },
  details: STORE_DETAILS,
  async run(values) {
    const asked = requireService(values);
    return withStore(values, 'lockdown off', async (store, opened) => {
      const base = await loadActiveVersion(store);
      const service = resolveLockdownService(base.files, asked).service;
      const files = withoutLockdown(base.files, service);
      if (!files) {
        process.stdout.write(
          `${service} is not locked down in the active version ${base.pointer.version}; nothing changed\n`,
        );
        return 0;
      }
      const r = await publishDerived(store, base, files, { tag: `unlock-${service}`, ...keys(values) });
      process.stdout.write(`lockdown lifted on ${service}\n${published(store, r, base.pointer.version)}`);
      await announcePointer(opened, r.activation.pointer);
      return recordChange(store, values, {
        action: 'lockdown-off',
        from: base.pointer.version,
        to: r.version,
        details: { service },
      });
    });
  },
};

export const lockdownStatusCommand: Command = {
  path: ['lockdown', 'status'],
  summary: 'list the lockdowns in the active version',
  usage: 'lockdown status [--json] <store flags>',
  options: { json: { type: 'boolean', description: 'Print JSON' }, ...STORE_OPTIONS },
  details: STORE_DETAILS,
  async run(values) {
    return withStore(values, 'lockdown status', async (store) => {
      const base = await loadActiveVersion(store);
      const lockdowns = listLockdowns(base.files);
      const mode = settingsOf(base.files).mode;
      if (values.json) {
        process.stdout.write(
          JSON.stringify({ bundle: store.location.bundle, version: base.pointer.version, mode, lockdowns }, null, 2) +
            '\n',
        );
        return 0;
      }
      const lines = [
        `${store.location.bundle} ${base.pointer.version} (mode ${mode}, active since ${base.pointer.activated_at})`,
      ];
      if (lockdowns.length === 0) lines.push('no service is locked down');
      for (const l of lockdowns) {
        lines.push(
          `locked down: ${l.service}  ${l.methods.join(',')} -> 503 "${l.message}" (Retry-After ${l.retryAfterSeconds})  since ${l.at} by ${l.by}${l.reason ? `: ${l.reason}` : ''}`,
        );
      }
      process.stdout.write(lines.join('\n') + '\n');
      return 0;
    });
  },
};

export const modeSetCommand: Command = {
  path: ['mode', 'set'],
  summary: "switch bundle.yaml's mode fleet-wide: high-alert tightens rate limits (and context.mode)",
  usage: 'mode set high-alert|normal [--reason TEXT] <store flags>',
  args: ['MODE'],
  options: { ...AUDIT_OPTIONS, ...PUBLISH_OPTIONS, ...STORE_OPTIONS },
  details: `Publishes a version derived from the active one with bundle.yaml's mode switched, and activates it.\n${STORE_DETAILS}`,
  async run(values, positionals) {
    let mode;
    try {
      mode = parseMode(positionals[0]);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    return withStore(values, 'mode set', async (store, opened) => {
      const r = await switchMode(store, mode, {
        who: actorName(values.actor as string | undefined),
        why: (values.reason as string | undefined) ?? null,
        ...keys(values),
      });
      if (!r.changed) {
        process.stdout.write(`${store.location.bundle} ${r.version} is already in ${mode} mode; nothing changed\n`);
        return 0;
      }
      process.stdout.write(
        `mode ${r.previousMode} -> ${mode}\n` +
          (r.limits.length
            ? `rate limits now: ${r.limits.join('; ')} (were ${r.wereLimits.join('; ')})\n`
            : 'no rate limits in bundle.yaml; policies still see context.mode\n') +
          `published ${store.location.bundle} ${r.to} (derived from ${r.from}, ${r.policies} policies) and activated it\n` +
          `servers polling ${store.url(store.pointerKey())} enforce it within their --poll-interval\n`,
      );
      await announcePointer(opened, r.pointer);
      if ('error' in r.audit) {
        process.stderr.write(`the change is made, but its audit record could not be written: ${r.audit.error}\n`);
        return 1;
      }
      process.stdout.write(`audit record ${store.url(r.audit.key)}\n`);
      return 0;
    });
  },
};

export const bundleShadowCommand: Command = {
  path: ['bundle', 'shadow'],
  summary: 'evaluate a pushed version beside the active one on live traffic, never enforcing it (--clear to stop)',
  usage: 'bundle shadow V | --clear [--reason TEXT] <store flags>',
  args: ['V'],
  options: {
    clear: { type: 'boolean', description: 'Stop shadowing' },
    'verify-key': PUBLISH_OPTIONS['verify-key'],
    ...AUDIT_OPTIONS,
    ...STORE_OPTIONS,
  },
  details:
    'Every server loads V at its next poll and counts disagreements in authz_shadow_mismatches_total{source="version",version="V"};\n' +
    'decision lines of disagreeing requests carry a "shadow" field. Activating any version ends the trial.\n' +
    STORE_DETAILS,
  async run(values, positionals) {
    const version = positionals[0];
    if (values.clear ? version !== undefined : version === undefined)
      throw new UsageError('give either a version or --clear');
    return withStore(values, 'bundle shadow', async (store, opened) => {
      if (values.clear) {
        const r = await clearShadowVersion(store);
        if (!r.before) {
          process.stdout.write(`no shadow version is set for ${store.location.bundle}; nothing changed\n`);
          return 0;
        }
        process.stdout.write(`stopped shadowing ${r.before.version}; ${r.pointer.version} stays active\n`);
        await announcePointer(opened, r.pointer);
        return recordChange(store, values, {
          action: 'shadow-clear',
          from: r.before.version,
          to: null,
          details: { active: r.pointer.version },
        });
      }
      const { verifyKey } = keys(values);
      const r = await setShadowVersion(store, version!, { verifyKey });
      process.stdout.write(
        `shadowing ${version} (${r.policies} policies) beside the active ${r.pointer.version}${r.before ? ` (replaces ${r.before.version})` : ''}\n` +
          `servers evaluate it on live traffic from their next poll; only ${r.pointer.version} is enforced\n` +
          `watch authz_shadow_mismatches_total{source="version",version="${version}"} and decision lines with a "shadow" field\n`,
      );
      await announcePointer(opened, r.pointer);
      return recordChange(store, values, {
        action: 'shadow',
        from: r.before?.version ?? null,
        to: version!,
        details: { active: r.pointer.version },
      });
    });
  },
};

export const bundleHistoryCommand: Command = {
  path: ['bundle', 'history'],
  summary: 'the audit trail: activations, rollbacks, shadows, lockdowns and mode changes, newest first',
  usage: 'bundle history [--limit N] [--json] <store flags>',
  options: {
    limit: { type: 'string', description: `How many records (default ${DEFAULT_HISTORY_LIMIT})`, valueName: 'N' },
    json: { type: 'boolean', description: 'Print JSON' },
    ...STORE_OPTIONS,
  },
  details: STORE_DETAILS,
  async run(values) {
    const limitRaw = (values.limit as string | undefined) ?? String(DEFAULT_HISTORY_LIMIT);
    if (!/^\d{1,6}$/.test(limitRaw)) throw new UsageError(`--limit "${limitRaw}" must be a whole number`);
    return withStore(values, 'bundle history', async (store) => {
      const entries = await readHistory(store, Number(limitRaw));
      if (values.json) {
        process.stdout.write(
          JSON.stringify(
            entries.map((e) => e.record ?? { key: e.key, problem: e.problem }),
            null,
            2,
          ) + '\n',
        );
        return 0;
      }
      if (entries.length === 0) {
        process.stdout.write(`no history for ${store.location.bundle} yet\n`);
        return 0;
      }
      const table = [['TIME', 'ACTION', 'FROM', 'TO', 'WHO', 'WHY']];
      for (const e of entries) {
        const r = e.record;
        if (!r) table.push([e.key, '?', '', '', '', `unreadable: ${e.problem}`]);
        else table.push([r.at, r.action + detailSuffix(r.details), r.from ?? '-', r.to ?? '-', r.who, r.why ?? '']);
      }
      const widths = table[0].map((_, i) => Math.max(...table.map((row) => row[i].length)));
      process.stdout.write(
        table
          .map((row) =>
            row
              .map((c, i) => c.padEnd(widths[i]))
              .join('  ')
              .trimEnd(),
          )
          .join('\n') + '\n',
      );
      return 0;
    });
  },
};

/** "lockdown-on orders", "mode high-alert": the one detail that tells records apart. */
function detailSuffix(details: Record<string, unknown> | undefined): string {
  if (!details) return '';
  if (typeof details.service === 'string') return ` ${details.service}`;
  if (typeof details.mode === 'string') return ` ${details.mode}`;
  return '';
}

export const SAFETY_COMMANDS: Command[] = [
  lockdownOnCommand,
  lockdownOffCommand,
  lockdownStatusCommand,
  modeSetCommand,
  bundleShadowCommand,
  bundleHistoryCommand,
];
