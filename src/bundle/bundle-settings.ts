/**
 * bundle.yaml: settings that travel with a policy set, so changing them is a
 * bundle publish (fleet-wide, audited, rolled back like policies), not a deploy.
 *
 *   mode: normal | high-alert          # also context.mode for policies
 *   enforcement: enforce | dry-run     # dry-run answers allow but logs the real decision
 *   timezone: Europe/Berlin            # for context.hour / context.weekday (default UTC)
 *   rateLimits:
 *     - name: anonymous-per-ip
 *       match: { principalType: Anonymous, service: frontend, methods: [GET, POST], pathPrefix: /api }
 *       key: source.ip                 # source.ip | principal | service | header:<name>
 *       normal:     { requestsPerSecond: 100, burst: 200 }
 *       high-alert: { requestsPerSecond: 20,  burst: 40 }
 */
import YAML from 'yaml';
import { z } from 'zod';
import { PolicySetError } from '../cedar/compile.js';
import { yamlErrorNote, yamlPathNote } from '../text/source-position.js';
import { didYouMean } from '../text/did-you-mean.js';

const SETTINGS_FILE = 'bundle.yaml';

export const MODES = ['normal', 'high-alert'] as const;
export type Mode = (typeof MODES)[number];

const rate = z.object({ requestsPerSecond: z.number().positive(), burst: z.number().int().positive() }).strict();

const rateLimitKey = z.string().refine((k) => ['source.ip', 'principal', 'service'].includes(k) || /^header:[a-z0-9-]+$/i.test(k), {
  message: 'must be source.ip, principal, service or header:<name>',
});

/** The principal types requests carry (principal.ts, jwt-claims.ts): a rule naming another would never match. */
export const PRINCIPAL_TYPES = ['Workload', 'User', 'Anonymous'] as const;

const principalType = z.string().superRefine((t, ctx) => {
  if (!(PRINCIPAL_TYPES as readonly string[]).includes(t)) {
    ctx.addIssue({ code: 'custom', message: `"${t}" is not a principal type requests carry (${PRINCIPAL_TYPES.join(', ')})${didYouMean(t, PRINCIPAL_TYPES)}` });
  }
});

export const rateLimitRuleSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/i, 'use letters, digits, - and _ (it is a metric label)'),
    match: z
      .object({
        principalType: principalType.optional(),
        service: z.string().optional(),
        methods: z.array(z.string().transform((m) => m.toUpperCase())).optional(),
        pathPrefix: z.string().optional(),
      })
      .strict()
      .default({}),
    key: rateLimitKey,
    normal: rate,
    'high-alert': rate.optional(),
  })
  .strict();

export type RateLimitRule = z.output<typeof rateLimitRuleSchema>;

function validTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

export const bundleSettingsSchema = z
  .object({
    name: z.string().optional(),
    mode: z.enum(MODES).default('normal'),
    enforcement: z.enum(['enforce', 'dry-run']).default('enforce'),
    timezone: z.string().refine(validTimeZone, { message: 'is not an IANA time zone (e.g. UTC, Europe/Berlin)' }).default('UTC'),
    rateLimits: z
      .array(rateLimitRuleSchema)
      .default([])
      .refine((rules) => new Set(rules.map((r) => r.name)).size === rules.length, { message: 'rule names must be unique' }),
  })
  .strict();

export type BundleSettings = Readonly<z.output<typeof bundleSettingsSchema>>;

export const DEFAULT_BUNDLE_SETTINGS: BundleSettings = Object.freeze(bundleSettingsSchema.parse({}));

export function parseBundleSettings(text: string | undefined): BundleSettings {
  if (text === undefined) return DEFAULT_BUNDLE_SETTINGS;
  let raw: unknown;
  try {
    raw = YAML.parse(text) ?? {};
  } catch (err) {
    throw new PolicySetError('bundle.yaml is not valid YAML', [], [yamlErrorNote(SETTINGS_FILE, text, err as Error)]);
  }
  const result = bundleSettingsSchema.safeParse(raw);
  if (!result.success) {
    throw new PolicySetError(
      'bundle.yaml is invalid',
      [],
      result.error.issues.map((i) => {
        // An unknown key is reported on its parent; point at the key itself.
        const unknownKey = i.code === 'unrecognized_keys';
        const path = unknownKey ? [...i.path, i.keys[0]] : i.path;
        return yamlPathNote(SETTINGS_FILE, text, path, `${i.path.join('.') || '(root)'}: ${i.message}`, unknownKey ? 'key' : 'value');
      }),
    );
  }
  return Object.freeze(result.data);
}

/** Serialise settings back (used when the CLI publishes a derived version). */
export function stringifyBundleSettings(settings: BundleSettings): string {
  return YAML.stringify(settings);
}
