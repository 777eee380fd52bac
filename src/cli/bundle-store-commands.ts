/**
 * Store commands: `bundle push`, `bundle activate`, `bundle rollback`, `bundle list`.
 * Exit code 0 on success, 1 when the store refuses or a check fails, 2 on usage errors.
 */
import { buildBundle, readBundleInput } from '../build/bundle-build.js';
import {
  activateVersion,
  BundlePublishError,
  pushBundle,
  rollbackBundle,
  signVersion,
  type ActivateResult,
} from '../operator/bundle-publish.js';
import { BundlePointerError, BundleStoreError, type BundleStore } from '../bundle/store/bundle-store.js';
import { formatTestReport } from '../build/policy-test-runner.js';
import { keyIdOf, loadSigningKey, SignatureKeyError } from '../bundle/format/signature.js';
import type { Command } from './command-framework.js';
import { UsageError } from './command-framework.js';
import { reportBuildFailure } from './bundle-commands.js';
import {
  formatBytes,
  STORE_DETAILS,
  STORE_OPTIONS,
  storeFromFlags,
  VERIFY_KEY_OPTION,
  verifyKeysFromFlag,
  type OpenedStore,
} from './store-options.js';
import { AUDIT_OPTIONS, recordChange } from './safety-commands.js';
import { announcePointer } from './push-notice.js';
import { DEFAULT_WAIT, parseWait, waitForFleet } from './fleet-commands.js';

/** Run `body` against the store from the flags; store and publish errors become one stderr line and exit 1. */
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
      err instanceof SignatureKeyError
    ) {
      process.stderr.write(`authz ${what}: ${err.message}\n`);
      return 1;
    }
    throw err;
  } finally {
    opened?.s3.destroy();
  }
}

function progressPrinter(): (sent: number, total: number) => void {
  let lastShown = -1;
  return (sent, total) => {
    const pct = Math.floor((sent / total) * 100);
    // On a terminal one line redrawn in place; in a log, a line every 10%.
    if (process.stderr.isTTY) {
      process.stderr.write(`\ruploading ${formatBytes(total)}: ${pct}%${sent === total ? '\n' : ''}`);
    } else if (Math.floor(pct / 10) > lastShown) {
      lastShown = Math.floor(pct / 10);
      process.stderr.write(`uploading ${formatBytes(total)}: ${pct}%\n`);
    }
  };
}

export const bundlePushCommand: Command = {
  path: ['bundle', 'push'],
  summary: 'upload a bundle (a directory is built and tested first) as a new, immutable version',
  usage:
    'bundle push DIR|FILE [--version V] [--sign-key KEY] --bucket B --bundle NAME [--s3-endpoint URL] [--prefix P]',
  args: ['DIR|FILE'],
  options: {
    version: {
      type: 'string',
      description: 'Version to push as (a directory: default dir-<content hash>; a file: its manifest version)',
      valueName: 'V',
    },
    'sign-key': { type: 'string', description: 'Ed25519 private key (PEM) to sign the bundle with', valueName: 'KEY' },
    ...STORE_OPTIONS,
  },
  details: `Refuses (exit 1) to overwrite an existing version, and to push a directory whose policies or tests fail.\n${STORE_DETAILS}`,
  async run(values, positionals) {
    const target = positionals[0];
    if (!target) throw new UsageError('bundle push needs a policy directory or a bundle .tar.gz');
    return withStore(values, 'bundle push', async (store) => {
      const signKey = values['sign-key'] ? loadSigningKey(values['sign-key'] as string) : undefined;
      const wanted = values.version as string | undefined;
      let input;
      let tarball: Buffer;
      let manifest;
      try {
        input = await readBundleInput(target);
        if (input.kind === 'directory') {
          const built = await buildBundle(input.files, {
            name: store.location.bundle,
            version: wanted ?? input.defaultVersion,
          });
          process.stdout.write(`${formatTestReport(built.report)}\n`);
          ({ tarball, manifest } = built);
        } else {
          ({ tarball, manifest } = input);
          if (wanted && wanted !== manifest.version) {
            throw new BundlePublishError(
              `${target} was built as version ${manifest.version}, not ${wanted}; rebuild it with --version ${wanted}`,
            );
          }
        }
      } catch (err) {
        if (err instanceof BundlePublishError) throw err;
        return reportBuildFailure(err, target);
      }
      const pushed = await pushBundle(store, tarball, manifest, { signKey, onProgress: progressPrinter() });
      process.stdout.write(
        `pushed ${store.location.bundle} ${pushed.version} (${formatBytes(pushed.bytes)}, sha256 ${pushed.sha256}${signKey ? `, signed with key ${keyIdOf(signKey)}` : ''}) ` +
          `to ${store.url(pushed.key)}\n` +
          `activate it with: authz bundle activate ${pushed.version} (same store flags)\n`,
      );
      return 0;
    });
  },
};

function describeActivation(store: BundleStore, r: ActivateResult, verb: string): string {
  const p = r.pointer;
  if (r.unchanged) return `${store.location.bundle} ${p.version} is already active; nothing changed\n`;
  return (
    `${verb} ${store.location.bundle} ${p.version} (sha256 ${p.sha256}; previous ${p.previous ?? 'none'}) at ${p.activated_at}\n` +
    `servers polling ${store.url(store.pointerKey())} switch within their --poll-interval\n`
  );
}

const VERIFY_OPTION = { 'verify-key': VERIFY_KEY_OPTION };

const LOADABLE_DETAILS =
  'Before the pointer moves, the version is downloaded and checked as every server checks it: sha256, signature (with --verify-key),\n' +
  'archive limits, manifest (files, bundle name, version) and a full compile with schema validation. A version no server would\n' +
  'load is refused (exit 1) and the pointer is left alone.';

export const bundleActivateCommand: Command = {
  path: ['bundle', 'activate'],
  summary: 'make a pushed version the active one (downloads, verifies and compiles it first, then writes the pointer)',
  usage:
    'bundle activate V --bucket B --bundle NAME [--s3-endpoint URL] [--verify-key PUB] [--force] [--reason TEXT] [--notify URL [--wait[=30s]]]',
  args: ['V'],
  options: {
    ...VERIFY_OPTION,
    force: {
      type: 'boolean',
      description:
        'Emergencies only: activate even if the manifest or compile check fails (recorded in the audit trail)',
    },
    wait: {
      type: 'string',
      bareValue: DEFAULT_WAIT,
      description: `Return only when every live server (reporting over --notify) runs V; exit 1 listing the stragglers after this long (default ${DEFAULT_WAIT})`,
      valueName: 'DURATION',
    },
    ...AUDIT_OPTIONS,
    ...STORE_OPTIONS,
  },
  details: `${LOADABLE_DETAILS}\n--force skips the manifest and compile checks (never the sha256 or signature); the audit record says so and why.\n${STORE_DETAILS}`,
  async run(values, positionals) {
    const version = positionals[0];
    if (!version) throw new UsageError('bundle activate needs a version');
    if (positionals.length > 1)
      throw new UsageError(`unexpected "${positionals[1]}" (a --wait duration is written --wait=${positionals[1]})`);
    const waitMs = values.wait !== undefined ? parseWait(values.wait as string) : undefined;
    return withStore(values, 'bundle activate', async (store, opened) => {
      if (waitMs !== undefined && !opened.notify)
        throw new UsageError(
          '--wait needs --notify nats://HOST:4222 (or AUTHZ_NOTIFY): servers report their versions over NATS',
        );
      const verifyKey = verifyKeysFromFlag(values['verify-key']);
      const force = values.force === true;
      const r = await activateVersion(store, version, { verifyKey, force });
      if (r.forcedPast) process.stderr.write(`authz bundle activate: --force: activated although ${r.forcedPast}\n`);
      process.stdout.write(describeActivation(store, r, 'activated'));
      if (!r.unchanged) await announcePointer(opened, r.pointer);
      const details = force ? { forced: true, ...(r.forcedPast ? { forced_past: r.forcedPast } : {}) } : undefined;
      const recorded = r.unchanged
        ? 0
        : await recordChange(store, values, {
            action: 'activate',
            from: r.before?.version ?? null,
            to: r.pointer.version,
            ...(details ? { details } : {}),
          });
      if (waitMs === undefined) return recorded;
      return Math.max(recorded, await waitForFleet(opened, r.pointer, waitMs));
    });
  },
};

export const bundleSignCommand: Command = {
  path: ['bundle', 'sign'],
  summary: 'sign a pushed version (again): for versions pushed unsigned or with an old-format signature',
  usage: 'bundle sign V --sign-key KEY --bucket B --bundle NAME [--s3-endpoint URL]',
  args: ['V'],
  options: {
    'sign-key': { type: 'string', description: 'Ed25519 private key (PEM) to sign with', valueName: 'KEY' },
    ...STORE_OPTIONS,
  },
  details:
    'The signature names the bundle, the version, the tarball sha256 and the key id; it replaces any signature the version had.\n' +
    'The version must still have the sha256 it was pushed with, and its manifest must name this bundle and version.\n' +
    STORE_DETAILS,
  async run(values, positionals) {
    const version = positionals[0];
    if (!version) throw new UsageError('bundle sign needs a version');
    if (!values['sign-key']) throw new UsageError('bundle sign needs --sign-key KEY');
    return withStore(values, 'bundle sign', async (store) => {
      const key = loadSigningKey(values['sign-key'] as string);
      const r = await signVersion(store, version, key);
      process.stdout.write(
        `signed ${store.location.bundle} ${r.version} (sha256 ${r.sha256}) with key ${keyIdOf(key)}${r.replaced ? ', replacing its previous signature' : ''}\n`,
      );
      return 0;
    });
  },
};

export const bundleRollbackCommand: Command = {
  path: ['bundle', 'rollback'],
  summary: "re-activate the pointer's previous version (run twice to undo)",
  usage: 'bundle rollback --bucket B --bundle NAME [--s3-endpoint URL] [--verify-key PUB] [--reason TEXT]',
  options: { ...VERIFY_OPTION, ...AUDIT_OPTIONS, ...STORE_OPTIONS },
  details: `${LOADABLE_DETAILS}\n${STORE_DETAILS}`,
  async run(values) {
    return withStore(values, 'bundle rollback', async (store, opened) => {
      const verifyKey = verifyKeysFromFlag(values['verify-key']);
      const r = await rollbackBundle(store, { verifyKey });
      process.stdout.write(describeActivation(store, r, `rolled back from ${r.before?.version} to`));
      if (!r.unchanged) await announcePointer(opened, r.pointer);
      return r.unchanged
        ? 0
        : recordChange(store, values, { action: 'rollback', from: r.before?.version ?? null, to: r.pointer.version });
    });
  },
};

export const bundleListCommand: Command = {
  path: ['bundle', 'list'],
  summary: 'list the pushed versions with their dates, the active one marked',
  usage: 'bundle list --bucket B --bundle NAME [--s3-endpoint URL] [--json]',
  options: { json: { type: 'boolean', description: 'Print JSON' }, ...STORE_OPTIONS },
  details: STORE_DETAILS,
  async run(values) {
    return withStore(values, 'bundle list', async (store) => {
      const [versions, pointer] = await Promise.all([store.listVersions(), store.getPointer()]);
      const active = pointer.kind === 'found' ? pointer.pointer : undefined;
      if (values.json) {
        const rows = versions.map((v) => ({
          ...v,
          lastModified: v.lastModified?.toISOString() ?? null,
          active: v.version === active?.version,
        }));
        process.stdout.write(
          JSON.stringify({ bundle: store.location.bundle, pointer: active ?? null, versions: rows }, null, 2) + '\n',
        );
        return 0;
      }
      if (versions.length === 0) {
        process.stdout.write(`no versions of ${store.location.bundle} at ${store.url(store.root)}\n`);
        return 0;
      }
      const table = [['', 'VERSION', 'PUSHED', 'SIZE', 'SIGNED']];
      for (const v of versions) {
        table.push([
          v.version === active?.version ? '*' : '',
          v.version,
          v.lastModified?.toISOString().replace('.000Z', 'Z') ?? '?',
          formatBytes(v.size),
          v.signed ? 'yes' : 'no',
        ]);
      }
      const widths = table[0].map((_, i) => Math.max(...table.map((r) => r[i].length)));
      const lines = table.map((r) =>
        r
          .map((c, i) => c.padEnd(widths[i]))
          .join('  ')
          .trimEnd(),
      );
      if (active) lines.push('', `* active since ${active.activated_at}; previous ${active.previous ?? 'none'}`);
      else if (pointer.kind === 'invalid') lines.push('', `pointer unusable: ${pointer.error.message}`);
      else lines.push('', 'no version is active');
      process.stdout.write(lines.join('\n') + '\n');
      return 0;
    });
  },
};
