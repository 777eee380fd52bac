/** Run a CLI command in-process, as `authz ...` would, capturing its output. */
import { vi } from 'vitest';
import { parseCommandArgs, UsageError, type Command } from '../../src/cli/command.js';
import { COMMANDS } from '../../src/cli/commands.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function runCli(argv: string[]): Promise<CliResult> {
  let cmd: Command | undefined;
  for (const c of COMMANDS) if (c.path.every((w, i) => argv[i] === w) && (!cmd || c.path.length > cmd.path.length)) cmd = c;
  if (!cmd) throw new Error(`no command for ${argv.join(' ')}`);
  let stdout = '';
  let stderr = '';
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => ((stdout += String(chunk)), true));
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => ((stderr += String(chunk)), true));
  try {
    const { values, positionals } = parseCommandArgs(cmd, argv.slice(cmd.path.length));
    return { code: await cmd.run(values, positionals), stdout, stderr };
  } catch (e) {
    if (e instanceof UsageError) return { code: 2, stdout, stderr: stderr + e.message };
    throw e;
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}
