/**
 * Store commands: `bundle push`, `bundle activate`, `bundle rollback`, `bundle list`.
 * Exit code 0 on success, 1 when the store refuses or a check fails, 2 on usage errors.
 */
import { buildBundle, readBundleInput } from '../bundle/bundle-build.js';
import { activateVersion, BundlePublishError, pushBundle, rollbackBundle, type ActivateResult } from '../bundle/bundle-publish.js';
import { BundlePointerError, BundleStoreError, type BundleStore } from '../bundle/bundle-store.js';
import { formatTestReport } from '../bundle/bundle-tests.js';
import { loadSigningKey, loadVerifyKey, SignatureKeyError } from '../bundle/signature.js';
import type { Command } from './command.js';
import { UsageError } from './command.js';
import { reportBuildFailure } from './bundle-commands.js';
import { formatBytes, STORE_DETAILS, STORE_OPTIONS, storeFromFlags, type OpenedStore } from './store-options.js';
import { AUDIT_OPTIONS, recordChange } from './safety-commands.js';

/** Run `body` against the store from the flags; store and publish errors become one stderr line and exit 1. */
async function withStore(values: Record<string, unknown>, what: string, body: (store: BundleStore) => Promise<number>): Promise<number> {
  let opened: OpenedStore | undefined;
  try {
    opened = storeFromFlags(values);
    return await body(opened.store);
  } catch (err) {
    if (err instanceof BundleStoreError || err instanceof BundlePublishError || err instanceof BundlePointerError || err instanceof SignatureKeyError) {
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
  usage: 'bundle push DIR|FILE [--version V] [--sign-key KEY] --bucket B --bundle NAME [--s3-endpoint URL] [--prefix P]',
  args: ['DIR|FILE'],
  options: {
    version: { type: 'string', description: 'Version to push as (a directory: default dir-<content hash>; a file: its manifest version)', valueName: 'V' },
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
          const built = await buildBundle(input.files, { name: store.location.bundle, version: wanted ?? input.defaultVersion });
          process.stdout.write(`${formatTestReport(built.report)}\n`);
          ({ tarball, manifest } = built);
        } else {
          ({ tarball, manifest } = input);
          if (wanted && wanted !== manifest.version) {
            throw new BundlePublishError(`${target} was built as version ${manifest.version}, not ${wanted}; rebuild it with --version ${wanted}`);
          }
        }
      } catch (err) {
        if (err instanceof BundlePublishError) throw err;
        return reportBuildFailure(err, target);
      }
      const pushed = await pushBundle(store, tarball, manifest, { signKey, onProgress: progressPrinter() });
      process.stdout.write(
        `pushed ${store.location.bundle} ${pushed.version} (${formatBytes(pushed.bytes)}, sha256 ${pushed.sha256}${pushed.signed ? ', signed' : ''}) ` +
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

const VERIFY_OPTION = {
  'verify-key': { type: 'string' as const, description: 'Refuse unless the bundle is signed by this Ed25519 public key (PEM)', valueName: 'PUB' },
};

export const bundleActivateCommand: Command = {
  path: ['bundle', 'activate'],
  summary: 'make a pushed version the active one (checks it exists and its sha256 matches, then writes the pointer)',
  usage: 'bundle activate V --bucket B --bundle NAME [--s3-endpoint URL] [--verify-key PUB] [--reason TEXT]',
  args: ['V'],
  options: { ...VERIFY_OPTION, ...AUDIT_OPTIONS, ...STORE_OPTIONS },
  details: STORE_DETAILS,
  async run(values, positionals) {
    const version = positionals[0];
    if (!version) throw new UsageError('bundle activate needs a version');
    return withStore(values, 'bundle activate', async (store) => {
      const verifyKey = values['verify-key'] ? loadVerifyKey(values['verify-key'] as string) : undefined;
      const r = await activateVersion(store, version, { verifyKey });
      process.stdout.write(describeActivation(store, r, 'activated'));
      return r.unchanged ? 0 : recordChange(store, values, { action: 'activate', from: r.before?.version ?? null, to: r.pointer.version });
    });
  },
};

export const bundleRollbackCommand: Command = {
  path: ['bundle', 'rollback'],
  summary: "re-activate the pointer's previous version (run twice to undo)",
  usage: 'bundle rollback --bucket B --bundle NAME [--s3-endpoint URL] [--verify-key PUB] [--reason TEXT]',
  options: { ...VERIFY_OPTION, ...AUDIT_OPTIONS, ...STORE_OPTIONS },
  details: STORE_DETAILS,
  async run(values) {
    return withStore(values, 'bundle rollback', async (store) => {
      const verifyKey = values['verify-key'] ? loadVerifyKey(values['verify-key'] as string) : undefined;
      const r = await rollbackBundle(store, { verifyKey });
      process.stdout.write(describeActivation(store, r, `rolled back from ${r.before?.version} to`));
      return r.unchanged ? 0 : recordChange(store, values, { action: 'rollback', from: r.before?.version ?? null, to: r.pointer.version });
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
        const rows = versions.map((v) => ({ ...v, lastModified: v.lastModified?.toISOString() ?? null, active: v.version === active?.version }));
        process.stdout.write(JSON.stringify({ bundle: store.location.bundle, pointer: active ?? null, versions: rows }, null, 2) + '\n');
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
      const lines = table.map((r) => r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd());
      if (active) lines.push('', `* active since ${active.activated_at}; previous ${active.previous ?? 'none'}`);
      else if (pointer.kind === 'invalid') lines.push('', `pointer unusable: ${pointer.error.message}`);
      else lines.push('', 'no version is active');
      process.stdout.write(lines.join('\n') + '\n');
      return 0;
    });
  },
};
