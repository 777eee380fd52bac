/**
 * The one configuration schema: every setting, its default and its check.
 * Keys are camelCase; the same key is `--kebab-case` on the command line,
 * `AUTHZ_UPPER_SNAKE` in the environment and camelCase in the YAML file.
 */
import { z } from 'zod';
import { parseDurationMs, parseHostPort, type HostPort } from './values.js';
import { contextConfigShape, refineContextConfig } from './context-schema.js';

export const DEFAULT_LISTEN = '0.0.0.0:9191';
export const DEFAULT_ADMIN = '0.0.0.0:9192';
export const DEFAULT_POLICIES_DIR = 'policies';

const hostPort = z.string().transform((s, ctx): HostPort => {
  const hp = parseHostPort(s);
  if (!hp) {
    ctx.addIssue({ code: 'custom', message: `expected HOST:PORT (e.g. 0.0.0.0:9191), got "${s}"` });
    return z.NEVER;
  }
  return hp;
});

export const duration = z.union([z.string(), z.number()]).transform((s, ctx): number => {
  const ms = parseDurationMs(s);
  if (ms === undefined) {
    ctx.addIssue({ code: 'custom', message: `expected a duration such as 500ms, 2s or 1m, got "${s}"` });
    return z.NEVER;
  }
  return ms;
});

export const bool = z.union([z.boolean(), z.enum(['true', 'false', '1', '0', 'yes', 'no'])]).transform((v) => v === true || v === 'true' || v === '1' || v === 'yes');

export const configSchema = z
  .object({
    listen: hostPort.default(parseHostPort(DEFAULT_LISTEN)!),
    admin: hostPort.default(parseHostPort(DEFAULT_ADMIN)!),
    policies: z.string().min(1).default(DEFAULT_POLICIES_DIR),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    /** Log request headers (redacted) in each decision line. */
    decisionLogHeaders: bool.default(true),
    /** Where log lines go: stdout, or a file path. */
    logDestination: z.string().min(1).default('stdout'),
    /** Identity and context: JWT issuers, risk header, trusted hops, load window (context-schema.ts). */
    ...contextConfigShape,
  })
  .strict()
  .superRefine(refineContextConfig);

export type Config = Readonly<z.output<typeof configSchema>>;
export type ConfigInput = z.input<typeof configSchema>;
