/** Every CLI command; `main.ts` dispatches on their paths. */
import type { Command } from './command-framework.js';
import { bundleBuildCommand, bundleKeygenCommand, bundleTestCommand } from './bundle-commands.js';
import {
  bundleActivateCommand,
  bundleListCommand,
  bundlePushCommand,
  bundleRollbackCommand,
  bundleSignCommand,
} from './bundle-store-commands.js';
import { alertsServeCommand } from './alerts-command.js';
import { checkCommand } from './check-command.js';
import { fleetStatusCommand } from './fleet-commands.js';
import { evalCommand } from './eval-command.js';
import { SAFETY_COMMANDS } from './safety-commands.js';
import { serveCommand } from './serve-command.js';
import { validateCommand } from './validate-command.js';

export const COMMANDS: Command[] = [
  serveCommand,
  checkCommand,
  evalCommand,
  validateCommand,
  bundleBuildCommand,
  bundleTestCommand,
  bundlePushCommand,
  bundleActivateCommand,
  bundleRollbackCommand,
  bundleSignCommand,
  bundleListCommand,
  bundleKeygenCommand,
  ...SAFETY_COMMANDS,
  fleetStatusCommand,
  alertsServeCommand,
];

/** The command whose path is the longest prefix of argv, and the arguments after it. */
export function findCommand(argv: string[]): { cmd: Command; rest: string[] } | undefined {
  let best: Command | undefined;
  for (const c of COMMANDS) {
    if (c.path.every((w, i) => argv[i] === w) && (!best || c.path.length > best.path.length)) best = c;
  }
  return best ? { cmd: best, rest: argv.slice(best.path.length) } : undefined;
}
