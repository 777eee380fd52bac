/**
 * `authz mode set high-alert|normal`: the same bundle with bundle.yaml's
 * `mode` switched. The YAML is edited as a document, so the operators'
 * comments and layout survive the round trip. Pure: files in, files out.
 */
import YAML from 'yaml';
import { didYouMean } from '../text/did-you-mean.js';
import { SETTINGS_FILE, type BundleFileMap } from '../bundle/format/bundle-files.js';
import { MODES, parseBundleSettings, type BundleSettings, type Mode } from '../bundle/bundle-settings.js';

export class ModeError extends Error {}

export function parseMode(value: string | undefined): Mode {
  if (!value || !(MODES as readonly string[]).includes(value)) {
    throw new ModeError(
      `mode must be one of ${MODES.join(', ')}${value ? `, not "${value}"${didYouMean(value, MODES)}` : ''}`,
    );
  }
  return value as Mode;
}

export function settingsOf(files: BundleFileMap): BundleSettings {
  return parseBundleSettings(files.get(SETTINGS_FILE)?.toString('utf8'));
}

/** Files with bundle.yaml's mode set; undefined when it already is. */
export function withMode(files: BundleFileMap, mode: Mode): BundleFileMap | undefined {
  if (settingsOf(files).mode === mode) return undefined;
  const text = files.get(SETTINGS_FILE)?.toString('utf8') ?? '';
  const parsed = YAML.parseDocument(text);
  if (parsed.errors.length > 0) throw new ModeError(`${SETTINGS_FILE} is not valid YAML: ${parsed.errors[0].message}`);
  // An empty (or comment-only) bundle.yaml has no mapping to set a key in.
  const doc = parsed.contents === null ? new YAML.Document({}) : parsed;
  if (parsed.contents === null && parsed.commentBefore) doc.commentBefore = parsed.commentBefore;
  doc.set('mode', mode);
  const out = new Map(files);
  out.set(SETTINGS_FILE, Buffer.from(doc.toString()));
  // Refuse here what a server would refuse.
  parseBundleSettings(out.get(SETTINGS_FILE)!.toString('utf8'));
  return out;
}

/** "anonymous-per-ip 10/s burst 20" for each rule, at the given mode's rates. */
export function describeRateLimits(settings: BundleSettings, mode: Mode): string[] {
  return settings.rateLimits.map((r) => {
    const rate = mode === 'high-alert' ? (r['high-alert'] ?? r.normal) : r.normal;
    return `${r.name} ${rate.requestsPerSecond}/s burst ${rate.burst}`;
  });
}
