/**
 * A bundle's own tests (tests/*.json), run by `bundle test` and before every
 * `bundle build`/`push`. Each file is a JSON array of cases:
 *
 *   [{ "name": "frontend reads an order",
 *      "request": { "method": "GET", "path": "/orders/1", "host": "orders",
 *                   "principal": "spiffe://cluster.local/ns/shop/sa/frontend" },
 *      "decision": "allow",
 *      "policies": ["orders-frontend-access"],   (optional: determining policy ids)
 *      "status": 200 }]                          (optional: HTTP status)
 *
 * The request is the short form of `authz check` (src/envoy/simple-request.ts)
 * and goes through the same pipeline as the server, so a passing test means
 * the server answers the same.
 */
import { z } from 'zod';
import { authorizeCheckRequest } from '../pipeline/authorize-input.js';
import type { ActiveBundle } from '../bundle/active-bundle.js';
import { simpleRequestToCheckRequest, type SimpleRequest } from '../envoy/simple-request.js';
import { TESTS_DIR, type BundleFileMap } from '../bundle/format/bundle-files.js';

const stringMap = z.record(z.string(), z.string());

/** Strict, so a misspelt key ("metod") fails the case instead of silently testing GET. */
const simpleRequestSchema = z.strictObject({
  method: z.string().optional(),
  path: z.string().optional(),
  host: z.string().optional(),
  scheme: z.string().optional(),
  headers: stringMap.optional(),
  principal: z.string().optional(),
  sourceIp: z.string().optional(),
  sourcePort: z.number().int().optional(),
  destinationIp: z.string().optional(),
  destinationPort: z.number().int().optional(),
  destinationPrincipal: z.string().optional(),
  contextExtensions: stringMap.optional(),
  time: z.string().optional(),
  network: z.boolean().optional(),
  sni: z.string().optional(),
  metadata: z.record(z.string(), z.unknown()).optional(),
  body: z.string().optional(),
});

/** A full Envoy CheckRequest (JSON with an `attributes` key) is taken as it is, as `authz check` does. */
const checkRequestSchema = z.looseObject({ attributes: z.record(z.string(), z.unknown()) });

const requestSchema = z
  .custom<Record<string, unknown>>(
    (v) => typeof v === 'object' && v !== null && !Array.isArray(v),
    'expected an object',
  )
  .check((ctx) => {
    const schema = 'attributes' in ctx.value ? checkRequestSchema : simpleRequestSchema;
    const parsed = schema.safeParse(ctx.value);
    if (!parsed.success) {
      for (const issue of parsed.error.issues)
        ctx.issues.push({ code: 'custom', message: issue.message, path: issue.path, input: ctx.value });
    }
  });

const caseSchema = z.strictObject({
  name: z.string().min(1),
  request: requestSchema,
  decision: z.enum(['allow', 'deny']),
  policies: z.array(z.string()).optional(),
  status: z.number().int().min(100).max(599).optional(),
});

export type BundleTestCase = z.infer<typeof caseSchema>;

export interface CaseResult {
  file: string;
  name: string;
  pass: boolean;
  /** Why it failed (absent on a pass). */
  failure?: string;
  durationMs: number;
}

export interface TestReport {
  cases: CaseResult[];
  /** Test files that could not be read as a list of cases. */
  fileErrors: { file: string; message: string }[];
  passed: number;
  failed: number;
}

export function isTestFile(name: string): boolean {
  return name.startsWith(TESTS_DIR) && name.endsWith('.json');
}

export function runBundleTests(files: BundleFileMap, set: ActiveBundle): TestReport {
  const report: TestReport = { cases: [], fileErrors: [], passed: 0, failed: 0 };
  for (const file of [...files.keys()].filter(isTestFile).sort()) {
    const cases = parseCaseFile(file, files.get(file)!, report);
    for (const [i, c] of cases.entries()) {
      const result = c.ok
        ? runCase(file, c.value, set)
        : { file, name: c.name ?? `case #${i + 1}`, pass: false, failure: c.message, durationMs: 0 };
      report.cases.push(result);
      if (result.pass) report.passed++;
      else report.failed++;
    }
  }
  report.failed += report.fileErrors.length;
  return report;
}

type Parsed = { ok: true; value: BundleTestCase } | { ok: false; name?: string; message: string };

function parseCaseFile(file: string, data: Buffer, report: TestReport): Parsed[] {
  let raw: unknown;
  try {
    raw = JSON.parse(data.toString('utf8'));
  } catch (err) {
    report.fileErrors.push({ file, message: `not valid JSON: ${(err as Error).message}` });
    return [];
  }
  if (!Array.isArray(raw)) {
    report.fileErrors.push({ file, message: 'expected a JSON array of test cases' });
    return [];
  }
  return raw.map((item): Parsed => {
    const parsed = caseSchema.safeParse(item);
    if (parsed.success) return { ok: true, value: parsed.data };
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(case)'}: ${i.message}`).join('; ');
    const name =
      item && typeof item === 'object' && typeof (item as { name?: unknown }).name === 'string'
        ? (item as { name: string }).name
        : undefined;
    return { ok: false, ...(name ? { name } : {}), message: `invalid test case: ${issues}` };
  });
}

function runCase(file: string, c: BundleTestCase, set: ActiveBundle): CaseResult {
  const started = performance.now();
  const done = (failure?: string): CaseResult => ({
    file,
    name: c.name,
    pass: failure === undefined,
    ...(failure !== undefined ? { failure } : {}),
    durationMs: performance.now() - started,
  });
  let decision;
  try {
    decision = authorizeCheckRequest(simpleRequestToCheckRequest(c.request as SimpleRequest), set).decision;
  } catch (err) {
    return done(`the request could not be evaluated: ${(err as Error).message}`);
  }
  const got = `got ${decision.kind} (${decision.reason}, HTTP ${decision.status}, policies: ${decision.policies.join(', ') || 'none'})`;
  const problems: string[] = [];
  if (decision.kind !== c.decision) problems.push(`expected ${c.decision}`);
  if (c.status !== undefined && decision.status !== c.status) problems.push(`expected HTTP ${c.status}`);
  if (c.policies !== undefined && !sameSet(c.policies, decision.policies)) {
    problems.push(`expected policies: ${c.policies.join(', ') || 'none'}`);
  }
  return done(problems.length ? `${problems.join(', ')}; ${got}` : undefined);
}

function sameSet(a: string[], b: string[]): boolean {
  if (a.length !== b.length) return false;
  const s = new Set(a);
  return b.every((x) => s.has(x));
}

/** One line per case, like `opa test -v`, then the totals. */
export function formatTestReport(report: TestReport): string {
  const lines: string[] = [];
  for (const e of report.fileErrors) lines.push(`ERROR ${e.file}: ${e.message}`);
  for (const c of report.cases) {
    lines.push(`${c.pass ? 'PASS' : 'FAIL'}  ${c.file}: ${c.name} (${c.durationMs.toFixed(1)}ms)`);
    if (c.failure) lines.push(`      ${c.failure}`);
  }
  const total = report.passed + report.failed;
  if (total === 0) return 'no tests (add tests/*.json to the bundle)';
  lines.push('-'.repeat(60));
  lines.push(`PASS: ${report.passed}/${total}`);
  if (report.failed > 0) lines.push(`FAIL: ${report.failed}/${total}`);
  return lines.join('\n');
}
