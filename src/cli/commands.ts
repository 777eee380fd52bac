/** Every CLI command; `main.ts` dispatches on their paths. */
import type { Command } from './command.js';
import { checkCommand } from './check-command.js';
import { serveCommand } from './serve-command.js';
import { validateCommand } from './validate-command.js';

export const COMMANDS: Command[] = [serveCommand, checkCommand, validateCommand];
