/**
 * bundle.yaml: settings that travel with a policy set. This module reads the
 * keys this server acts on (today `timezone`) and leaves other keys to the
 * features that own them, so a bundle written for a newer server still loads.
 */
import YAML from 'yaml';
import { PolicySetError } from '../cedar/compile.js';

/** bundle-files.ts SETTINGS_FILE; not imported because bundle-files imports this module. */
const SETTINGS_FILE = 'bundle.yaml';

export interface BundleSettings {
  /** IANA timezone for context.hour and context.weekday. */
  timezone?: string;
}

export function parseBundleSettings(text: string): BundleSettings {
  let doc: unknown;
  try {
    doc = YAML.parse(text);
  } catch (err) {
    throw new PolicySetError(`${SETTINGS_FILE} is not valid YAML: ${(err as Error).message}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new PolicySetError(`${SETTINGS_FILE} must be a mapping of settings`);
  const out: BundleSettings = {};
  const tz = (doc as Record<string, unknown>).timezone;
  if (tz !== undefined) {
    if (typeof tz !== 'string' || !tz.trim()) throw new PolicySetError(`${SETTINGS_FILE}: timezone must be an IANA time zone name such as Europe/Berlin`);
    out.timezone = tz.trim();
  }
  return out;
}
