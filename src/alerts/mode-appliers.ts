/** How `authz alerts serve` switches the mode: through the store, or (--dry-run) only saying what it would do. */
import type { KeyObject } from 'node:crypto';
import type { BundlePointer, BundleStore } from '../bundle/store/bundle-store.js';
import type { VerifyKeys } from '../bundle/format/signature.js';
import { loadActiveVersion } from '../operator/derived-version.js';
import { settingsOf } from '../operator/mode.js';
import { switchMode } from '../operator/mode-switch.js';
import type { ApplyOutcome, ModeApplier, ModeChange } from './alert-receiver.js';

/** Put the new pointer on the NATS push channel (when configured); returns what to add to the message. */
export type PointerAnnouncer = (pointer: BundlePointer) => Promise<string>;

export function storeModeApplier(
  store: BundleStore,
  keys: { signKey?: KeyObject; verifyKey?: VerifyKeys } = {},
  announce?: PointerAnnouncer,
): ModeApplier {
  return {
    async apply(change: ModeChange): Promise<ApplyOutcome> {
      const r = await switchMode(store, change.mode, {
        who: change.who,
        why: change.why,
        details: change.details,
        ...keys,
      });
      if (!r.changed)
        return {
          changed: false,
          message: `${store.location.bundle} ${r.version} is already in ${r.mode} mode; nothing changed`,
        };
      const audit =
        'key' in r.audit ? `audit record ${store.url(r.audit.key)}` : `audit record NOT written: ${r.audit.error}`;
      const limits = r.limits.length ? `; rate limits now ${r.limits.join('; ')}` : '';
      const pushed = announce ? `; ${await announce(r.pointer)}` : '';
      return {
        changed: true,
        message: `mode ${r.previousMode} -> ${r.mode}: published and activated ${store.location.bundle} ${r.to} (derived from ${r.from})${limits}; ${audit}${pushed}`,
      };
    },
  };
}

/** --dry-run: reads the active mode, publishes nothing. */
export function dryRunModeApplier(store: BundleStore): ModeApplier {
  return {
    async apply(change: ModeChange): Promise<ApplyOutcome> {
      const base = await loadActiveVersion(store);
      const current = settingsOf(base.files).mode;
      if (current === change.mode)
        return {
          changed: false,
          message: `dry run: ${store.location.bundle} ${base.pointer.version} is already in ${current} mode`,
        };
      return {
        changed: false,
        message: `dry run: would switch ${store.location.bundle} ${base.pointer.version} from ${current} to ${change.mode} (${change.why}); nothing published`,
      };
    },
  };
}
