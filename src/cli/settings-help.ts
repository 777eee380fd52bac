/**
 * `serve --help`'s list of every setting under its three names: the flag, the
 * AUTHZ_* environment variable and the YAML key. Built from the config schema,
 * so a setting added there shows up here (a test holds every key to it).
 */
import { camelToEnv, camelToKebab, kebabToCamel } from '../config/load-config.js';
import { configSchema } from '../config/schema.js';
import type { OptionSpec } from './command-framework.js';

/** Settings with a structure no flag or environment value can carry: YAML only. */
const YAML_ONLY: Record<string, string> = {
  jwtIssuers:
    'Several JWT issuers, each with issuer, audiences, jwks, algorithms, clockSkew, principalClaim, parentClaims (docs/context.md)',
  jwtParentClaims: 'Claims whose values become parents of the User, e.g. { groups: Group, roles: Role }',
};

export function settingsHelp(options: Record<string, OptionSpec>, notSettings: string[]): string {
  const rows: string[] = [];
  for (const key of Object.keys(configSchema.shape)) {
    const flag = camelToKebab(key);
    const spec = options[flag];
    if (spec && !notSettings.includes(flag)) {
      rows.push(
        `  ${`--${flag}`} | ${camelToEnv(key)} | ${key}${spec.multiple ? ' (repeatable; a YAML list; comma-separated in the environment)' : ''}`,
        `      ${spec.description}`,
      );
    } else if (YAML_ONLY[key]) {
      rows.push(`  (YAML only) ${key}`, `      ${YAML_ONLY[key]}`);
    } else {
      rows.push(`  (no flag) ${camelToEnv(key)} | ${key}`);
    }
  }
  for (const name of Object.keys(options)) {
    if (!notSettings.includes(name) && !(kebabToCamel(name) in configSchema.shape))
      rows.push(`  --${name}`, `      ${options[name].description}`);
  }
  return [
    'Settings (flag | environment | YAML key of --config FILE; flags > environment > file > defaults):',
    ...rows,
    '',
    'Durations take a unit: 500ms, 2s, 1m, 1h.',
  ].join('\n');
}
