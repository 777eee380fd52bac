/** Every CLI command; `main.ts` dispatches on their paths. */
import type { Command } from './command.js';
import { bundleBuildCommand, bundleKeygenCommand, bundleTestCommand } from './bundle-commands.js';
import { bundleActivateCommand, bundleListCommand, bundlePushCommand, bundleRollbackCommand } from './bundle-store-commands.js';
import { checkCommand } from './check-command.js';
import { serveCommand } from './serve-command.js';
import { validateCommand } from './validate-command.js';

export const COMMANDS: Command[] = [
  serveCommand,
  checkCommand,
  validateCommand,
  bundleBuildCommand,
  bundleTestCommand,
  bundlePushCommand,
  bundleActivateCommand,
  bundleRollbackCommand,
  bundleListCommand,
  bundleKeygenCommand,
];
