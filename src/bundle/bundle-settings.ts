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
 *   allowEffects:                      # applied to every allowed request, before the policies' own effects
 *     - name: no-internal-headers-from-anonymous
 *       principalType: Anonymous       # optional: only for this principal type
 *       stripHeaders: [x-internal-*]
 *       setHeaders: { x-caller: "{principal.type}" }
 *       stripQuery: [access_token]
 *       responseHeaders: { cache-control: no-store }
 *   services:                          # how the mesh names each service (envoy/target-service.ts)
 *     orders:
 *       identities: [spiffe://cluster.local/ns/shop/sa/orders]
 *       hosts: [orders.example.com]
 *   gateways: [spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account]
 *   frontProxy: true                   # no mesh identity: the Host decides (Envoy at the edge)
 *   clusterDomain: cluster.local
 */
import YAML from 'yaml';
import { z } from 'zod';
import { PolicySetError } from '../cedar/compile.js';
import {
  EffectSyntaxError,
  parseHeaderNames,
  parseHeaderTemplateMap,
  parseQueryNameList,
} from '../effects/effect-syntax.js';
import { DEFAULT_CLUSTER_DOMAIN } from '../envoy/service-names.js';
import { ServiceDirectory } from '../envoy/target-service.js';
import { yamlErrorNote, yamlPathNote } from '../text/source-position.js';
import { didYouMean } from '../text/did-you-mean.js';
import { isValidTimezone } from '../context/time-fields.js';

const SETTINGS_FILE = 'bundle.yaml';

export const MODES = ['normal', 'high-alert'] as const;
export const RATE_LIMITING = ['server', 'envoy'] as const;
export type Mode = (typeof MODES)[number];

const rate = z.object({ requestsPerSecond: z.number().positive(), burst: z.number().int().positive() }).strict();

const rateLimitKey = z
  .string()
  .refine((k) => ['source.ip', 'principal', 'service'].includes(k) || /^header:[a-z0-9-]+$/i.test(k), {
    message: 'must be source.ip, principal, service or header:<name>',
  });

/** The principal types requests carry (principal.ts, jwt-claims.ts): a rule naming another would never match. */
export const PRINCIPAL_TYPES = ['Workload', 'User', 'Anonymous'] as const;

const principalType = z.string().superRefine((t, ctx) => {
  if (!(PRINCIPAL_TYPES as readonly string[]).includes(t)) {
    ctx.addIssue({
      code: 'custom',
      message: `"${t}" is not a principal type requests carry (${PRINCIPAL_TYPES.join(', ')})${didYouMean(t, PRINCIPAL_TYPES)}`,
    });
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

/**
 * A bundle-wide allow effect. Kept in its written form; the response stage
 * parses it once per set (allow-effects.ts). The check here refuses a bad list or template.
 */
export const allowEffectRuleSchema = z
  .object({
    name: z
      .string()
      .regex(/^[a-z0-9][a-z0-9_-]*$/i, 'use letters, digits, - and _')
      .optional(),
    principalType: z.string().min(1).optional(),
    stripHeaders: z.array(z.string()).default([]),
    setHeaders: z.record(z.string(), z.string()).default({}),
    stripQuery: z.array(z.string()).default([]),
    responseHeaders: z.record(z.string(), z.string()).default({}),
  })
  .strict()
  .superRefine((rule, ctx) => {
    const check = (field: string, fn: () => unknown): void => {
      try {
        fn();
      } catch (err) {
        if (!(err instanceof EffectSyntaxError)) throw err;
        // The issue's path already names the field.
        ctx.addIssue({ code: 'custom', path: [field], message: err.message.replace(`${field}: `, '') });
      }
    };
    if (rule.stripHeaders.length) check('stripHeaders', () => parseHeaderNames(rule.stripHeaders, 'stripHeaders'));
    check('setHeaders', () => parseHeaderTemplateMap(rule.setHeaders, 'setHeaders', false));
    if (rule.stripQuery.length) check('stripQuery', () => parseQueryNameList(rule.stripQuery.join(','), 'stripQuery'));
    check('responseHeaders', () => parseHeaderTemplateMap(rule.responseHeaders, 'responseHeaders', true));
  });

/** Service names as Cedar resources and hosts see them: canonical (lower-case, no port, no trailing dot). */
const SERVICE_NAME = /^[a-z0-9]([a-z0-9._-]{0,251}[a-z0-9])?$/;
const DNS_NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/;

const serviceEntrySchema = z
  .object({
    /** Destination identities (SPIFFE ids) of the service's workloads. */
    identities: z.array(z.string().min(1)).default([]),
    /** More host names reaching it (external names); Kubernetes forms come from the identities' namespaces. */
    hosts: z.array(z.string().min(1)).default([]),
  })
  .strict();

export const bundleSettingsSchema = z
  .object({
    name: z.string().optional(),
    mode: z.enum(MODES).default('normal'),
    enforcement: z.enum(['enforce', 'dry-run']).default('enforce'),
    timezone: z
      .string()
      .refine(isValidTimezone, { message: 'is not an IANA time zone (e.g. UTC, Europe/Berlin)' })
      .default('UTC'),
    rateLimits: z
      .array(rateLimitRuleSchema)
      .default([])
      .refine((rules) => new Set(rules.map((r) => r.name)).size === rules.length, {
        message: 'rule names must be unique',
      }),
    /**
     * Who counts rateLimits: each server its share of the fleet-wide rate (server), or Envoy's global
     * rate-limit service from the descriptors in our dynamic_metadata (envoy; the servers count nothing).
     */
    rateLimiting: z.enum(RATE_LIMITING).default('server'),
    allowEffects: z.array(allowEffectRuleSchema).default([]),
    services: z.record(z.string(), serviceEntrySchema).default({}),
    /** Destination identities of ingress gateways: there the Host decides which service is called. */
    gateways: z.array(z.string().min(1)).default([]),
    /** A check with no mesh identity and no context_extensions["service"]: the Host decides (true) or it is denied (false). */
    frontProxy: z.boolean().default(true),
    /** The cluster's DNS domain, for `orders.shop.svc.<clusterDomain>`. */
    clusterDomain: z
      .string()
      .regex(DNS_NAME, 'expected a DNS domain such as cluster.local')
      .default(DEFAULT_CLUSTER_DOMAIN),
  })
  .strict()
  .superRefine((s, ctx) => {
    for (const name of Object.keys(s.services)) {
      if (!SERVICE_NAME.test(name)) {
        ctx.addIssue({
          code: 'custom',
          path: ['services', name],
          message:
            'service names are lower-case letters, digits, ".", "_" or "-", as requests resolve them (Service::"orders")',
        });
      }
    }
    // An identity or host claimed by two services would make the target depend on map order.
    for (const problem of new ServiceDirectory(s).problems) {
      const [path, ...rest] = problem.split(': ');
      ctx.addIssue({ code: 'custom', path: path.split('.'), message: rest.join(': ') });
    }
  });

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
        return yamlPathNote(
          SETTINGS_FILE,
          text,
          path,
          `${i.path.join('.') || '(root)'}: ${i.message}`,
          unknownKey ? 'key' : 'value',
        );
      }),
    );
  }
  return Object.freeze(result.data);
}
