/**
 * A tiny command framework over node:util parseArgs: every command declares
 * its options once, which gives both parsing and `--help`.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

export type OptionSpec = NonNullable<ParseArgsConfig['options']>[string] & {
  description: string;
  valueName?: string;
  /** A string option that may be given bare (`--wait`), meaning this value; a value then needs `=` (`--wait=10s`). */
  bareValue?: string;
};

export interface Command {
  /** Words that select it, e.g. ["bundle", "push"]. */
  path: string[];
  summary: string;
  usage: string;
  options: Record<string, OptionSpec>;
  /** Extra help text after the options. */
  details?: string;
  run(values: Record<string, unknown>, positionals: string[]): Promise<number>;
}

export class UsageError extends Error {}

export function parseCommandArgs(cmd: Command, argv: string[]): { values: Record<string, unknown>; positionals: string[] } {
  const options: ParseArgsConfig['options'] = { help: { type: 'boolean', short: 'h' } };
  for (const [name, spec] of Object.entries(cmd.options)) {
    const { description: _d, valueName: _v, bareValue: _b, ...rest } = spec;
    options[name] = rest;
  }
  try {
    const args = argv.map((a) => {
      const spec = a.startsWith('--') ? cmd.options[a.slice(2)] : undefined;
      return spec?.bareValue !== undefined ? `${a}=${spec.bareValue}` : a;
    });
    const { values, positionals } = parseArgs({ args, options, allowPositionals: true, strict: true });
    return { values: values as Record<string, unknown>, positionals };
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

export function helpText(cmd: Command): string {
  const lines = [`authz ${cmd.path.join(' ')}: ${cmd.summary}`, '', `Usage: authz ${cmd.usage}`, '', 'Options:'];
  const entries = Object.entries(cmd.options);
  for (const [name, spec] of entries) {
    const value = spec.bareValue !== undefined ? `[=${spec.valueName ?? 'VALUE'}]` : spec.type === 'string' ? ` ${spec.valueName ?? 'VALUE'}` : '';
    const flag = `--${name}${spec.short ? `, -${spec.short}` : ''}${value}`;
    lines.push(`  ${flag.padEnd(34)} ${spec.description}${spec.multiple ? ' (repeatable)' : ''}`);
  }
  lines.push(`  ${'--help, -h'.padEnd(34)} Show this help`);
  if (cmd.details) lines.push('', cmd.details);
  return lines.join('\n');
}
