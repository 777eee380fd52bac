/**
 * A tiny command framework over node:util parseArgs: every command declares
 * its options once, which gives both parsing and `--help`.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { didYouMean } from '../text/did-you-mean.js';

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
  /**
   * Names of the positional arguments it takes, e.g. ["DIR"]; more are refused.
   * Absent: none.
   */
  args?: string[];
  /** When set, `--help` lists only these options (the details list the rest, e.g. serve's settings). */
  optionsShown?: string[];
  /** Extra help text after the options. */
  details?: string;
  run(values: Record<string, unknown>, positionals: string[]): Promise<number>;
}

export class UsageError extends Error {}

export function parseCommandArgs(
  cmd: Command,
  argv: string[],
): { values: Record<string, unknown>; positionals: string[] } {
  const options: ParseArgsConfig['options'] = { help: { type: 'boolean', short: 'h' } };
  for (const [name, spec] of Object.entries(cmd.options)) {
    const { description: _d, valueName: _v, bareValue: _b, ...rest } = spec;
    options[name] = rest;
  }
  let parsed;
  try {
    const args = argv.map((a) => {
      const spec = a.startsWith('--') ? cmd.options[a.slice(2)] : undefined;
      return spec?.bareValue !== undefined ? `${a}=${spec.bareValue}` : a;
    });
    parsed = parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(usageMessage(err as Error & { code?: string }, Object.keys(options)));
  }
  const allowed = cmd.args?.length ?? 0;
  if (parsed.positionals.length > allowed && !parsed.values.help) {
    const extra = parsed.positionals
      .slice(allowed)
      .map((p) => `"${p}"`)
      .join(', ');
    throw new UsageError(
      `unexpected argument${parsed.positionals.length - allowed > 1 ? 's' : ''} ${extra}${allowed ? ` (takes ${cmd.args!.join(' ')})` : ' (it takes none)'}`,
    );
  }
  return { values: parsed.values as Record<string, unknown>, positionals: parsed.positionals };
}

/** node:util's messages, in one line with a suggestion (its own advice about "--" and unbalanced quotes is for a different mistake). */
function usageMessage(err: Error & { code?: string }, names: string[]): string {
  const flags = names.map((n) => `--${n}`);
  if (err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    const typed = /'([^']+)'/.exec(err.message)?.[1] ?? '';
    const bare = typed.replace(/=.*$/, '');
    return `unknown option ${bare}${didYouMean(bare, flags, (f) => f)}`;
  }
  if (err.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    const flag = /'(-[^' ]+)/.exec(err.message)?.[1];
    if (/argument missing/.test(err.message) && flag) return `${flag} needs a value`;
    if (flag) return `${flag} takes no value`;
  }
  return err.message.split('. ')[0];
}

export function helpText(cmd: Command): string {
  const lines = [`authz ${cmd.path.join(' ')}: ${cmd.summary}`, '', `Usage: authz ${cmd.usage}`, '', 'Options:'];
  const entries = Object.entries(cmd.options).filter(([name]) => !cmd.optionsShown || cmd.optionsShown.includes(name));
  for (const [name, spec] of entries) {
    const value =
      spec.bareValue !== undefined
        ? `[=${spec.valueName ?? 'VALUE'}]`
        : spec.type === 'string'
          ? ` ${spec.valueName ?? 'VALUE'}`
          : '';
    const flag = `--${name}${spec.short ? `, -${spec.short}` : ''}${value}`;
    lines.push(`  ${flag.padEnd(34)} ${spec.description}${spec.multiple ? ' (repeatable)' : ''}`);
  }
  lines.push(`  ${'--help, -h'.padEnd(34)} Show this help`);
  if (cmd.details) lines.push('', cmd.details);
  return lines.join('\n');
}
