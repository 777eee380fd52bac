/**
 * The ServiceDirectory of a policy set: its bundle.yaml naming settings, and
 * which services it knows (a `services:` entry, a `Service` entity, a policy
 * naming `Service::"…"`). Built once per set, on first use; the policy walk
 * behind "known" runs only when a host names a service other than the
 * destination identity's, which normal traffic never does.
 */
import type { CompiledPolicySet } from '../cedar/compile.js';
import { ServiceDirectory, type TargetSettings } from '../envoy/target-service.js';

export const SERVICE_TYPE = 'Service';

/** What the directory is built from (an `ActiveBundle` is one): the bundle's naming settings and its policy set. */
export interface ServiceSources {
  readonly policySet: CompiledPolicySet;
  readonly settings: TargetSettings;
}

const directories = new WeakMap<ServiceSources, ServiceDirectory>();

export function serviceDirectoryFor(bundle: ServiceSources | null | undefined): ServiceDirectory {
  if (!bundle) return ServiceDirectory.DEFAULT;
  let dir = directories.get(bundle);
  if (!dir) {
    const set = bundle.policySet;
    let named: Set<string> | undefined;
    const isKnown = (name: string): boolean => {
      if (set.entities.get(SERVICE_TYPE, name)) return true;
      named ??= servicesNamedIn(
        (function* () {
          for (const p of set.policies.values()) yield p.json;
        })(),
      );
      return named.has(name);
    };
    dir = new ServiceDirectory(bundle.settings, isKnown);
    directories.set(bundle, dir);
  }
  return dir;
}

/** Ids of every `Service` entity a policy mentions (scope or body), from Cedar's JSON form. */
export function servicesNamedIn(policies: Iterable<unknown>): Set<string> {
  const out = new Set<string>();
  const walk = (v: unknown, depth: number): void => {
    if (depth > 256 || v === null || typeof v !== 'object') return;
    if (Array.isArray(v)) {
      for (const x of v) walk(x, depth + 1);
      return;
    }
    const o = v as Record<string, unknown>;
    if (o.type === SERVICE_TYPE && typeof o.id === 'string') out.add(o.id);
    for (const k in o) walk(o[k], depth + 1);
  };
  for (const p of policies) walk(p, 0);
  return out;
}
