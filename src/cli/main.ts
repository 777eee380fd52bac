#!/usr/bin/env node
/**
 * `authz` command line: `npm run authz -- <command> [options]`.
 */
import { ConfigError } from '../config/load-config.js';
import { PolicySetError } from '../cedar/compile.js';
import { helpText, parseCommandArgs, UsageError, type Command } from './command.js';
import { COMMANDS, findCommand } from './commands.js';

function topHelp(): string {
  const rows = COMMANDS.map((c) => `  ${c.path.join(' ').padEnd(24)} ${c.summary}`);
  return ['authz: Envoy/Istio external authorization with Cedar policies', '', 'Usage: authz <command> [options]', '', 'Commands:', ...rows, '', 'Run "authz <command> --help" for its options.'].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    process.stdout.write(topHelp() + '\n');
    return argv.length === 0 ? 2 : 0;
  }
  const found = findCommand(argv);
  if (!found) {
    const group = COMMANDS.filter((c) => c.path[0] === argv[0]);
    if (group.length > 0) {
      process.stderr.write(`authz ${argv[0]}: choose one of:\n${group.map((c) => `  ${c.path.join(' ').padEnd(24)} ${c.summary}`).join('\n')}\n`);
    } else {
      process.stderr.write(`authz: unknown command "${argv[0]}"\n\n${topHelp()}\n`);
    }
    return 2;
  }
  const { cmd, rest } = found;
  try {
    const { values, positionals } = parseCommandArgs(cmd, rest);
    if (values.help) {
      process.stdout.write(helpText(cmd) + '\n');
      return 0;
    }
    return await cmd.run(values, positionals);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`authz ${cmd.path.join(' ')}: ${err.message}\n\n${helpText(cmd)}\n`);
      return 2;
    }
    if (err instanceof ConfigError || err instanceof PolicySetError) {
      process.stderr.write(`authz ${cmd.path.join(' ')}: ${err.message}\n`);
      return 2;
    }
    process.stderr.write(`authz ${cmd.path.join(' ')}: ${(err as Error).stack ?? String(err)}\n`);
    return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`${(err as Error).stack}\n`);
    process.exitCode = 2;
  },
);
