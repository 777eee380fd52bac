/**
 * The `authz` program: picks the command, parses its options, and turns
 * every failure into one line on stderr and a non-zero exit. Stack traces
 * are for bugs, not for mistakes: `--debug` (or AUTHZ_DEBUG=1) shows them.
 */
import { readFileSync } from 'node:fs';
import { cedar } from '../cedar/cedar-wasm.js';
import { didYouMean } from '../text/did-you-mean.js';
import { describeError, isUserError } from './describe-error.js';
import { helpText, parseCommandArgs, UsageError, type Command } from './command-framework.js';
import { COMMANDS, findCommand } from './command-table.js';

export const DEBUG_FLAG = '--debug';

export interface ProgramIo {
  out(text: string): void;
  err(text: string): void;
  env?: NodeJS.ProcessEnv;
}

const STDIO: ProgramIo = { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) };

function commandRows(commands: Command[]): string[] {
  return commands.map((c) => `  ${c.path.join(' ').padEnd(24)} ${c.summary}`);
}

function topHelp(): string {
  return [
    'authz: Envoy/Istio external authorization with Cedar policies',
    '',
    'Usage: authz <command> [options]',
    '',
    'Commands:',
    ...commandRows(COMMANDS),
    '',
    'Global options:',
    `  ${'--version, -V'.padEnd(24)} Print the version of authz, Cedar and Node`,
    `  ${'--debug'.padEnd(24)} Print stack traces with errors (also AUTHZ_DEBUG=1)`,
    '',
    'Run "authz help <command>" or "authz <command> --help" for its options.',
  ].join('\n');
}

/** `authz --version`: ours, the Cedar engine's and Node's. */
export function versionText(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    name: string;
    version: string;
  };
  return `authz ${pkg.version} (${pkg.name})\ncedar ${cedar.getCedarVersion()}\nnode ${process.versions.node}`;
}

/** The first words of every command (serve, check, bundle, lockdown, ...). */
function firstWords(): string[] {
  return [...new Set(COMMANDS.map((c) => c.path[0]))];
}

/** Help for `authz help WORDS` / `authz WORDS --help` where WORDS may be a group such as "bundle". */
function helpFor(words: string[], io: ProgramIo): number {
  const found = findCommand(words);
  if (found && found.rest.length === 0) {
    io.out(helpText(found.cmd) + '\n');
    return 0;
  }
  const group = COMMANDS.filter((c) => c.path[0] === words[0]);
  if (group.length > 0 && words.length === 1) {
    io.out(
      `authz ${words[0]}: one of\n${commandRows(group).join('\n')}\n\nRun "authz help ${words[0]} <command>" for its options.\n`,
    );
    return 0;
  }
  return unknownCommand(words, io);
}

function unknownCommand(words: string[], io: ProgramIo): number {
  const group = COMMANDS.filter((c) => c.path[0] === words[0]);
  if (group.length > 0) {
    const second = group.map((c) => c.path[1]).filter((w): w is string => w !== undefined);
    const what =
      words[1] === undefined ? `authz ${words[0]} needs a command` : `authz ${words[0]}: unknown command "${words[1]}"`;
    io.err(`${what}${(words[1] && didYouMean(words[1], second)) || `; one of ${second.join(', ')}`}\n`);
  } else {
    io.err(
      `authz: unknown command "${words[0]}"${didYouMean(words[0], firstWords()) || '; run "authz --help" for the list'}\n`,
    );
  }
  return 2;
}

export async function runProgram(argv: string[], io: ProgramIo = STDIO): Promise<number> {
  const env = io.env ?? process.env;
  const endOfOptions = argv.indexOf('--');
  const debugAt = argv.indexOf(DEBUG_FLAG);
  const debug =
    (debugAt !== -1 && (endOfOptions === -1 || debugAt < endOfOptions)) ||
    env.AUTHZ_DEBUG === '1' ||
    env.AUTHZ_DEBUG === 'true';
  const args =
    debugAt !== -1 && (endOfOptions === -1 || debugAt < endOfOptions) ? argv.filter((_, i) => i !== debugAt) : argv;

  const first = args[0];
  if (first === undefined) {
    io.err(topHelp() + '\n');
    return 2;
  }
  if (first === '--help' || first === '-h') {
    io.out(topHelp() + '\n');
    return 0;
  }
  if (first === 'help') return args.length === 1 ? (io.out(topHelp() + '\n'), 0) : helpFor(args.slice(1), io);
  if (first === '--version' || first === '-V' || first === 'version') {
    if (args.length > 1) {
      io.err(`authz ${first}: unexpected argument "${args[1]}"\n`);
      return 2;
    }
    io.out(versionText() + '\n');
    return 0;
  }

  const found = findCommand(args);
  if (!found) {
    // `authz bundle --help` asks for the group's commands.
    if (args.length === 2 && (args[1] === '--help' || args[1] === '-h')) return helpFor([first], io);
    if (first.startsWith('-')) {
      io.err(
        `authz: unknown option "${first}"${didYouMean(first, ['--help', '--version', DEBUG_FLAG])}; options go after the command, e.g. "authz serve --help"\n`,
      );
      return 2;
    }
    return unknownCommand(args, io);
  }
  const { cmd, rest } = found;
  const name = `authz ${cmd.path.join(' ')}`;
  try {
    const { values, positionals } = parseCommandArgs(cmd, rest);
    if (values.help) {
      io.out(helpText(cmd) + '\n');
      return 0;
    }
    return await cmd.run(values, positionals);
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`${name}: ${err.message}\nRun "${name} --help" for its options.\n`);
      return 2;
    }
    io.err(`${name}: ${describeError(err)}\n`);
    if (debug && err instanceof Error && err.stack) io.err(`${err.stack}\n`);
    else if (!isUserError(err)) io.err(`(run with ${DEBUG_FLAG} for the stack trace)\n`);
    return 2;
  }
}
