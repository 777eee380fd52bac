/**
 * The one store path that switches the fleet's mode, used by `authz mode set`
 * (a person) and `authz alerts serve` (Alertmanager): publish a version
 * derived from the active one with bundle.yaml's mode switched, activate it,
 * and write the audit record saying who and why.
 */
import type { KeyObject } from 'node:crypto';
import type { Mode } from '../bundle/bundle-settings.js';
import type { BundlePointer, BundleStore } from '../bundle/store/bundle-store.js';
import { recordHistory } from '../bundle/store/bundle-history.js';
import type { VerifyKeys } from '../bundle/format/signature.js';
import { loadActiveVersion, publishDerived } from './derived-version.js';
import { describeRateLimits, settingsOf, withMode } from './mode.js';

export interface ModeSwitchOptions {
  who: string;
  why: string | null;
  /** Extra fields of the audit record (the alert, its fingerprint, the sender...). */
  details?: Record<string, unknown>;
  signKey?: KeyObject;
  verifyKey?: VerifyKeys;
}

export type ModeSwitchResult =
  | { changed: false; mode: Mode; version: string }
  | {
      changed: true;
      mode: Mode;
      previousMode: Mode;
      from: string;
      to: string;
      policies: number;
      /** The pointer as activated (for the NATS push notice). */
      pointer: BundlePointer;
      /** "anonymous-per-ip 2/s burst 4" per rule, now and before. */
      limits: string[];
      wereLimits: string[];
      /** The audit record's key, or why it could not be written (the switch itself is done). */
      audit: { key: string } | { error: string };
    };

export async function switchMode(
  store: BundleStore,
  mode: Mode,
  options: ModeSwitchOptions,
): Promise<ModeSwitchResult> {
  const base = await loadActiveVersion(store);
  const before = settingsOf(base.files);
  const files = withMode(base.files, mode);
  if (!files) return { changed: false, mode, version: base.pointer.version };
  const r = await publishDerived(store, base, files, {
    tag: mode,
    signKey: options.signKey,
    verifyKey: options.verifyKey,
  });
  let audit: { key: string } | { error: string };
  try {
    const key = await recordHistory(store, {
      action: 'mode',
      from: base.pointer.version,
      to: r.version,
      who: options.who,
      why: options.why,
      details: { mode, previous_mode: before.mode, ...options.details },
    });
    audit = { key };
  } catch (err) {
    audit = { error: (err as Error).message };
  }
  return {
    changed: true,
    mode,
    previousMode: before.mode,
    from: base.pointer.version,
    to: r.version,
    policies: r.set.policySet.policies.size,
    pointer: r.activation.pointer,
    limits: describeRateLimits(r.set.settings, mode),
    wereLimits: describeRateLimits(before, before.mode),
    audit,
  };
}
