/**
 * Building a bundle: policy files → validated, tested, manifested .tar.gz
 * (CLI build/push, `npm run dev`). It sits above the pipeline because the
 * bundle's tests are decided by it; opening a built bundle is
 * bundle/format/open-bundle.ts.
 * bundle.yaml and any other file ride along untouched: the manifest lists them,
 * the compiler ignores what is not *.cedar, the schema or entities.
 */
import { promises as fs } from 'node:fs';
import { cedar } from '../cedar/cedar-wasm.js';
import { PolicySetError } from '../cedar/compile.js';
import { compileBundle, type ActiveBundle } from '../bundle/active-bundle.js';
import type { SourceNote } from '../text/source-position.js';
import { packBundle } from '../bundle/format/bundle-archive.js';
import { openBundle } from '../bundle/format/open-bundle.js';
import { filesToPolicySetSource, MANIFEST_FILE, type BundleFileMap } from '../bundle/format/bundle-files.js';
import { runBundleTests, type TestReport } from './policy-test-runner.js';
import {
  buildManifest,
  segmentProblem,
  serialiseManifest,
  sha256,
  type BundleManifest,
} from '../bundle/format/manifest.js';
import { directoryVersion, readPolicyDirectory } from '../bundle/format/policy-directory.js';

export class BundleBuildError extends Error {
  constructor(
    message: string,
    readonly report?: TestReport,
    /** Places in the bundle's files the refusal is about (from the policy set's error). */
    readonly notes: SourceNote[] = [],
    /** The message without the notes, to print above them. */
    readonly headline = message,
  ) {
    super(message);
  }
}

export interface BuildOptions {
  name: string;
  version: string;
  created?: Date;
}

export interface BuiltBundle {
  tarball: Buffer;
  sha256: string;
  manifest: BundleManifest;
  report: TestReport;
  set: ActiveBundle;
}

/** Compile (validating against the schema when there is one), run the tests, pack. Throws BundleBuildError. */
export async function buildBundle(input: BundleFileMap, options: BuildOptions): Promise<BuiltBundle> {
  for (const problem of [segmentProblem('bundle name', options.name), segmentProblem('version', options.version)]) {
    if (problem) throw new BundleBuildError(problem);
  }
  // A directory that was once a bundle (unpacked to edit) still has the old manifest; the new one replaces it.
  const files: BundleFileMap = new Map([...input].filter(([name]) => name !== MANIFEST_FILE));
  const { set, report } = validateAndTest(files, options.version);
  if (report.failed > 0) {
    throw new BundleBuildError(
      `${report.failed} of ${report.passed + report.failed} bundle tests failed; not building`,
      report,
    );
  }
  const created = options.created ?? new Date();
  const manifest = buildManifest(files, {
    name: options.name,
    version: options.version,
    created,
    cedarVersion: cedar.getCedarVersion(),
    tests: { cases: report.passed + report.failed, passed: report.passed },
  });
  files.set(MANIFEST_FILE, serialiseManifest(manifest));
  const tarball = await packBundle(files, created, MANIFEST_FILE);
  return { tarball, sha256: sha256(tarball), manifest, report, set };
}

/** Compile and run the tests; a policy error becomes BundleBuildError. */
export function validateAndTest(files: BundleFileMap, version: string): { set: ActiveBundle; report: TestReport } {
  let set: ActiveBundle;
  try {
    set = compileBundle(filesToPolicySetSource(files, version));
  } catch (err) {
    if (err instanceof PolicySetError)
      throw new BundleBuildError(
        `the policies do not validate: ${err.message}`,
        undefined,
        err.notes,
        `the policies do not validate: ${err.summary}`,
      );
    throw err;
  }
  return { set, report: runBundleTests(files, set) };
}

export type BundleInput =
  | { kind: 'directory'; path: string; files: BundleFileMap; defaultVersion: string }
  | { kind: 'file'; path: string; files: BundleFileMap; tarball: Buffer; manifest: BundleManifest };

/** A CLI argument naming either a policy directory or a built .tar.gz. */
export async function readBundleInput(path: string): Promise<BundleInput> {
  const stat = await fs.stat(path).catch(() => null);
  if (!stat) throw new BundleBuildError(`${path}: no such file or directory`);
  if (stat.isDirectory()) {
    const files = await readPolicyDirectory(path);
    return { kind: 'directory', path, files, defaultVersion: directoryVersion(files) };
  }
  const tarball = await fs.readFile(path);
  try {
    const opened = await openBundle(tarball);
    return { kind: 'file', path, tarball, ...opened };
  } catch (err) {
    // Archive and manifest problems read the same to someone holding the file.
    throw new BundleBuildError(`${path}: ${(err as Error).message}`);
  }
}
