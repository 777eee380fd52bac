/** Temporary policy directories on real disk. */
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export const EXAMPLE_POLICIES = path.resolve(import.meta.dirname, '../../policies');

export function copyExamplePolicies(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'authz-policies-'));
  cpSync(EXAMPLE_POLICIES, dir, { recursive: true });
  return dir;
}

export function policyDir(files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'authz-policies-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, name), text);
  return dir;
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
