/**
 * Small policy sets whose answers tell their versions apart, built into real
 * bundles with the real builder.
 *
 *   "open":   GET /x is allowed by x-open
 *   "closed": GET /x is denied (HTTP 403) by x-closed; everything else allowed by all-open
 */
import type { BundleFileMap } from '../../src/bundle/format/bundle-files.js';
import { buildBundle, type BuiltBundle } from '../../src/build/bundle-build.js';
import { pushBundle, type PushOptions } from '../../src/operator/bundle-publish.js';
import type { BundleStore } from '../../src/bundle/store/bundle-store.js';

export type Variant = 'open' | 'closed';

const POLICIES: Record<Variant, string> = {
  open: '@id("x-open")\npermit (principal, action, resource) when { context.path == "/x" };\n',
  closed:
    '@id("x-closed")\n@status("403")\nforbid (principal, action, resource) when { context.path == "/x" };\n' +
    '@id("all-open")\npermit (principal, action, resource);\n',
};

const TESTS: Record<Variant, unknown[]> = {
  open: [
    { name: 'x is open', request: { method: 'GET', path: '/x', host: 'svc' }, decision: 'allow', policies: ['x-open'] },
  ],
  closed: [
    {
      name: 'x is closed',
      request: { method: 'GET', path: '/x', host: 'svc' },
      decision: 'deny',
      status: 403,
      policies: ['x-closed'],
    },
  ],
};

export function policyFiles(variant: Variant, extra: Record<string, string> = {}): BundleFileMap {
  const files: BundleFileMap = new Map([
    ['main.cedar', Buffer.from(POLICIES[variant])],
    ['tests/x.json', Buffer.from(JSON.stringify(TESTS[variant]))],
    ['bundle.yaml', Buffer.from(`# bundle settings travel inside the bundle\nmode: normal\n`)],
  ]);
  for (const [k, v] of Object.entries(extra)) files.set(k, Buffer.from(v));
  return files;
}

export function build(name: string, version: string, variant: Variant): Promise<BuiltBundle> {
  return buildBundle(policyFiles(variant), { name, version });
}

/** Build and push; returns the built bundle. */
export async function publish(
  store: BundleStore,
  version: string,
  variant: Variant,
  options?: PushOptions,
): Promise<BuiltBundle> {
  const built = await build(store.location.bundle, version, variant);
  await pushBundle(store, built.tarball, built.manifest, options);
  return built;
}
