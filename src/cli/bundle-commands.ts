/**
 * Offline bundle commands: `bundle build`, `bundle test`, `bundle keygen`.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { BundleBuildError, buildBundle, readBundleInput, validateAndTest } from '../build/bundle-build.js';
import { formatTestReport } from '../build/policy-test-runner.js';
import { generateSigningKeyPair } from '../bundle/format/signature.js';
import type { Command } from './command-framework.js';
import { UsageError } from './command-framework.js';
import { formatBytes } from './store-options.js';
import { describeError } from './describe-error.js';
import { formatNote, notesUnder } from '../text/source-position.js';

export const bundleBuildCommand: Command = {
  path: ['bundle', 'build'],
  summary: 'validate a policy directory, run its tests and pack it as a versioned .tar.gz',
  usage: 'bundle build DIR -o FILE [--name NAME] [--version V]',
  args: ['DIR'],
  options: {
    output: { type: 'string', short: 'o', description: 'Where to write the .tar.gz', valueName: 'FILE' },
    name: {
      type: 'string',
      description: 'Bundle name in the manifest (default: the directory name)',
      valueName: 'NAME',
    },
    version: { type: 'string', description: 'Version in the manifest (default: dir-<content hash>)', valueName: 'V' },
  },
  details:
    'Refuses to build (exit 1) when a policy does not parse or validate against schema.cedarschema, or a test in tests/*.json fails.',
  async run(values, positionals) {
    const dir = positionals[0];
    const out = values.output as string | undefined;
    if (!dir) throw new UsageError('bundle build needs a policy directory');
    if (!out) throw new UsageError('bundle build needs -o FILE');
    const input = await readBundleInput(dir);
    if (input.kind !== 'directory') throw new UsageError(`${dir} is a file; bundle build takes a policy directory`);
    const name = (values.name as string | undefined) ?? path.basename(path.resolve(dir));
    const version = (values.version as string | undefined) ?? input.defaultVersion;
    try {
      const built = await buildBundle(input.files, { name, version });
      const report = formatTestReport(built.report);
      process.stdout.write(`${report}\n`);
      await fs.writeFile(out, built.tarball);
      process.stdout.write(
        `built ${out}: bundle ${name} version ${version}, ${Object.keys(built.manifest.files).length} files, ` +
          `${formatBytes(built.tarball.length)}, sha256 ${built.sha256}\n`,
      );
      return 0;
    } catch (err) {
      return reportBuildFailure(err, dir);
    }
  },
};

export const bundleTestCommand: Command = {
  path: ['bundle', 'test'],
  summary: "run a bundle's tests (tests/*.json) against its policies, one PASS/FAIL line per case",
  usage: 'bundle test DIR|FILE',
  args: ['DIR|FILE'],
  options: {},
  details: 'Exit code: 0 when every case passes, 1 when any fails or the policies do not validate, 2 on a usage error.',
  async run(_values, positionals) {
    const target = positionals[0];
    if (!target) throw new UsageError('bundle test needs a policy directory or a bundle .tar.gz');
    try {
      const input = await readBundleInput(target);
      const version = input.kind === 'directory' ? input.defaultVersion : input.manifest.version;
      const { report } = validateAndTest(input.files, version);
      process.stdout.write(`${formatTestReport(report)}\n`);
      return report.failed > 0 ? 1 : 0;
    } catch (err) {
      return reportBuildFailure(err, target);
    }
  },
};

export const bundleKeygenCommand: Command = {
  path: ['bundle', 'keygen'],
  summary: 'create an Ed25519 key pair for signing bundles (NAME.key, NAME.pub)',
  usage: 'bundle keygen NAME',
  args: ['NAME'],
  options: {},
  details:
    'Push with --sign-key NAME.key; give servers --verify-key NAME.pub. Existing files are never overwritten.\n' +
    "Signatures name the key by its id (the first 16 hex characters of the public key's sha256). To rotate, give servers\n" +
    'both public keys (--verify-key old.pub --verify-key new.pub), sign with the new one, then drop the old (docs/bundles.md).',
  async run(_values, positionals) {
    const base = positionals[0];
    if (!base) throw new UsageError('bundle keygen needs a file name prefix, e.g. keys/bundles');
    const { privateKeyPem, publicKeyPem, keyId } = generateSigningKeyPair();
    try {
      // 'wx' fails when the file exists: a key is never silently replaced.
      await fs.writeFile(`${base}.key`, privateKeyPem, { flag: 'wx', mode: 0o600 });
      await fs.writeFile(`${base}.pub`, publicKeyPem, { flag: 'wx', mode: 0o644 });
    } catch (err) {
      process.stderr.write(`authz bundle keygen: ${describeError(err)}\n`);
      return 1;
    }
    process.stdout.write(
      `wrote ${base}.key (private, keep it with the publisher) and ${base}.pub (for serve --verify-key); key id ${keyId}\n`,
    );
    return 0;
  },
};

export function reportBuildFailure(err: unknown, what: string): number {
  if (!(err instanceof BundleBuildError)) throw err;
  if (err.report) process.stdout.write(`${formatTestReport(err.report)}\n`);
  if (err.notes.length === 0) process.stderr.write(`REFUSED ${what}: ${err.message}\n`);
  else
    process.stderr.write(
      `REFUSED ${what}: ${err.headline}:\n${notesUnder(what, err.notes).map(formatNote).join('\n')}\n`,
    );
  return 1;
}
