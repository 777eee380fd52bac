/** Run a CLI command in-process, as `authz ...` would, capturing its output. */
import { vi } from 'vitest';
import { parseCommandArgs, UsageError } from '../../src/cli/command-framework.js';
import { findCommand } from '../../src/cli/command-table.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function runCli(argv: string[]): Promise<CliResult> {
  const found = findCommand(argv);
  if (!found) throw new Error(`no command for ${argv.join(' ')}`);
  const cmd = found.cmd;
  let stdout = '';
  let stderr = '';
  const out = vi
    .spyOn(process.stdout, 'write')
    .mockImplementation((chunk: string | Uint8Array) => ((stdout += String(chunk)), true));
  const err = vi
    .spyOn(process.stderr, 'write')
    .mockImplementation((chunk: string | Uint8Array) => ((stderr += String(chunk)), true));
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

/** Run the whole `authz` program in-process (command choice, help, errors), as the executable would. */
export async function runAuthz(argv: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  const { runProgram } = await import('../../src/cli/program.js');
  let stdout = '';
  let stderr = '';
  const out = vi
    .spyOn(process.stdout, 'write')
    .mockImplementation((chunk: string | Uint8Array) => ((stdout += String(chunk)), true));
  const err = vi
    .spyOn(process.stderr, 'write')
    .mockImplementation((chunk: string | Uint8Array) => ((stderr += String(chunk)), true));
  try {
    const code = await runProgram(argv, {
      out: (t) => process.stdout.write(t),
      err: (t) => process.stderr.write(t),
      env,
    });
    return { code, stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}
