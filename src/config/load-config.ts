/**
 * Build the frozen Config from, in rising precedence: the YAML file, the
 * environment (AUTHZ_*), and command-line flags. Validated once; an error
 * names the field and where its value came from, and stops start-up.
 */
import { readFileSync } from 'node:fs';
import YAML from 'yaml';
import { didYouMean } from '../text/did-you-mean.js';
import { configSchema, type Config } from './schema.js';
import { formatNoteLine, yamlErrorNote, yamlPathNote } from '../text/source-position.js';

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
  /** For a setting read from the file: the file's text and the key as written there (to point at its line). */
  let fileText = '';
  const fileKey: Record<string, string> = {};
  if (file) {
    let parsed: unknown;
    try {
      fileText = readFileSync(file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new ConfigError(`config file ${file}: ${code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
    }
    try {
      parsed = YAML.parse(fileText);
    } catch (err) {
      throw new ConfigError(formatNoteLine(yamlErrorNote(file, fileText, err as Error)));
    }
    if (parsed !== null && parsed !== undefined) {
      if (typeof parsed !== 'object' || Array.isArray(parsed))
        throw new ConfigError(`config file ${file}: expected a mapping of settings`);
      for (const [k, v] of Object.entries(parsed as Record<string, unknown>)) {
        const key = k.includes('-') ? kebabToCamel(k) : k;
        merged[key] = v;
        origin[key] = `config file ${file}`;
        fileKey[key] = k;
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
        return issue.keys
          .map((k) => {
            const hint = didYouMean(k, keys);
            if (file && fileKey[k] !== undefined)
              return formatNoteLine(
                yamlPathNote(file, fileText, [fileKey[k]], `unknown setting "${fileKey[k]}"${hint}`, 'key'),
              );
            return `unknown setting "${k}"${origin[k] ? ` (from ${origin[k]})` : ''}${hint}`;
          })
          .join('\n  ');
      }
      const top = String(issue.path[0] ?? '');
      if (file && fileKey[top] !== undefined && origin[top] === `config file ${file}`) {
        return formatNoteLine(
          yamlPathNote(file, fileText, [fileKey[top], ...issue.path.slice(1)], `${field}: ${issue.message}`),
        );
      }
      const from = origin[top] ? ` (from ${origin[top]})` : '';
      return `${field}: ${issue.message}${from}`;
    });
    throw new ConfigError(`invalid configuration:\n  ${lines.join('\n  ')}`);
  }
  return Object.freeze(result.data);
}
