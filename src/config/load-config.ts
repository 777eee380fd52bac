/**
 * Build the frozen Config from, in rising precedence: the YAML file, the
 * environment (AUTHZ_*), and command-line flags. Validated once; an error
 * names the field and where its value came from, and stops start-up.
 */
import { readFileSync } from 'node:fs';
import YAML from 'yaml';
import { configSchema, type Config } from './schema.js';

export class ConfigError extends Error {}

export const ENV_PREFIX = 'AUTHZ_';

export function camelToKebab(s: string): string {
  return s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

export function camelToEnv(s: string): string {
  return ENV_PREFIX + s.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase();
}

export function kebabToCamel(s: string): string {
  return s.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

export interface ConfigSources {
  /** Flags already parsed, keyed by camelCase name. */
  flags?: Record<string, unknown>;
  env?: NodeJS.ProcessEnv;
  /** Path of a YAML config file (or taken from AUTHZ_CONFIG). */
  file?: string;
}

type Origin = Record<string, string>;

export function loadConfig(sources: ConfigSources = {}): Config {
  const env = sources.env ?? process.env;
  const keys = Object.keys(configSchema.shape);
  const merged: Record<string, unknown> = {};
  const origin: Origin = {};

  const file = sources.file ?? env[`${ENV_PREFIX}CONFIG`];
  if (file) {
    let parsed: unknown;
    try {
      parsed = YAML.parse(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new ConfigError(`config file ${file}: ${(err as Error).message}`);
    }
    if (parsed !== null && parsed !== undefined) {
      if (typeof parsed !== 'object' || Array.isArray(parsed)) throw new ConfigError(`config file ${file}: expected a mapping of settings`);
      for (const [k, v] of Object.entries(parsed as Record<string, unknown>)) {
        const key = k.includes('-') ? kebabToCamel(k) : k;
        merged[key] = v;
        origin[key] = `config file ${file}`;
      }
    }
  }
  for (const key of keys) {
    const name = camelToEnv(key);
    const v = env[name];
    if (v !== undefined && v !== '') {
      merged[key] = v;
      origin[key] = `environment ${name}`;
    }
  }
  for (const [key, v] of Object.entries(sources.flags ?? {})) {
    if (v === undefined) continue;
    merged[key] = v;
    origin[key] = `--${camelToKebab(key)}`;
  }

  const result = configSchema.safeParse(merged);
  if (!result.success) {
    const lines = result.error.issues.map((issue) => {
      const field = issue.path.join('.') || '(root)';
      if (issue.code === 'unrecognized_keys') {
        return `unknown setting(s) ${issue.keys.map((k) => `"${k}"${origin[k] ? ` (from ${origin[k]})` : ''}`).join(', ')}`;
      }
      const top = String(issue.path[0] ?? '');
      const from = origin[top] ? ` (from ${origin[top]})` : '';
      return `${field}: ${issue.message}${from}`;
    });
    throw new ConfigError(`invalid configuration:\n  ${lines.join('\n  ')}`);
  }
  return Object.freeze(result.data);
}
