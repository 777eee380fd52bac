/**
 * A bundle's files (from a directory or an unpacked tarball) → BundleContents.
 * Directory and S3 bundles go through this one function, so they behave the same.
 */
import { PolicySetError } from '../../cedar/compile.js';
import type { BundleContents } from '../active-bundle.js';
import { IpListError, listNameOf } from '../../context/ip-lists.js';
import { parseBundleSettings } from '../bundle-settings.js';
import { jsonErrorNote } from '../../text/source-position.js';

export type BundleFileMap = Map<string, Buffer>;

export const SCHEMA_FILE = 'schema.cedarschema';
export const ENTITIES_FILE = 'entities.json';
export const SETTINGS_FILE = 'bundle.yaml';
export const MANIFEST_FILE = 'manifest.json';
export const TESTS_DIR = 'tests/';

export function isPolicyFile(name: string): boolean {
  return name.endsWith('.cedar') && !name.startsWith(TESTS_DIR);
}

/** lists/NAME.txt files as {name, text}; parsed (and refused if bad) when the set compiles. */
function listFiles(files: BundleFileMap): { name: string; text: string }[] {
  const out: { name: string; text: string }[] = [];
  for (const [path, data] of files) {
    let name: string | undefined;
    try {
      name = listNameOf(path);
    } catch (err) {
      if (err instanceof IpListError) throw new PolicySetError(err.message);
      throw err;
    }
    if (name !== undefined) out.push({ name, text: data.toString('utf8') });
  }
  return out;
}

export function filesToPolicySetSource(files: BundleFileMap, version: string): BundleContents {
  const policies = [...files.keys()]
    .filter(isPolicyFile)
    .sort()
    .map((name) => ({ name, text: files.get(name)!.toString('utf8') }));
  if (policies.length === 0) throw new PolicySetError('the policy set has no *.cedar files');
  const source: BundleContents = { version, policies };
  const schema = files.get(SCHEMA_FILE);
  if (schema) source.schema = schema.toString('utf8');
  const entities = files.get(ENTITIES_FILE);
  if (entities) {
    const text = entities.toString('utf8');
    try {
      source.entities = JSON.parse(text);
      source.entitiesText = text;
    } catch (err) {
      throw new PolicySetError(
        `${ENTITIES_FILE} is not valid JSON`,
        [],
        [jsonErrorNote(ENTITIES_FILE, text, err as Error)],
      );
    }
  }
  const lists = listFiles(files);
  if (lists.length > 0) source.lists = lists;
  source.settings = parseBundleSettings(files.get(SETTINGS_FILE)?.toString('utf8'));
  return source;
}
