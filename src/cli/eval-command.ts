/**
 * `authz eval`: decide plain Cedar requests (any entity types, no Envoy) against
 * a policy directory, through the engine the server uses (slicing, projection,
 * decision cache). One request from a file, or a stream of JSON lines in and
 * one JSON answer per line out.
 */
import { createReadStream, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { z } from 'zod';
import { compilePolicyDirectory } from '../bundle/format/compile-policy-directory.js';
import { EngineResultCache } from '../cache/decision-cache.js';
import type { CompiledPolicySet } from '../cedar/compile.js';
import { decide, type EngineRequest } from '../cedar/engine.js';
import type { EngineResult } from '../cedar/evaluate.js';
import {
  DEFAULT_DECISION_CACHE_ENTRIES,
  DEFAULT_DECISION_CACHE_TTL_MS,
  DEFAULT_POLICIES_DIR,
} from '../config/schema.js';
import type { Command } from './command-framework.js';
import { UsageError } from './command-framework.js';
import { applyEngineOption, ENGINE_OPTION } from './engine-option.js';

const uid = z.object({ type: z.string().min(1), id: z.string() }, { error: 'expected {"type": "...", "id": "..."}' });

/** One request as `authz eval` reads it. */
export const evalRequestSchema = z.object({
  principal: uid,
  action: uid,
  resource: uid,
  context: z.record(z.string(), z.unknown()).default({}),
  entities: z.array(z.object({ uid: z.unknown() }).loose(), { error: 'expected an array of entities' }).default([]),
});

/** One answer line. `error` is set (and the decision is deny) when the request could not be evaluated. */
export interface EvalAnswer {
  decision: 'allow' | 'deny';
  determining: string[];
  errors: { policy: string; message: string }[];
  error?: string;
}

/** Parse one request (JSON text) into an engine request, or say what is wrong with it. */
export function parseEvalRequest(text: string): EngineRequest | { error: string } {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    return { error: `not valid JSON: ${(err as Error).message}` };
  }
  const parsed = evalRequestSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { error: `${issue.path.length ? issue.path.join('.') : 'request'}: ${issue.message}` };
  }
  // The values as written (zod's copy of a record would turn a "__proto__" key into a prototype).
  const r = raw as Record<string, unknown>;
  const { principal, action, resource } = parsed.data;
  return {
    principal,
    action,
    resource,
    context: (r.context ?? {}) as EngineRequest['context'],
    entities: (r.entities ?? []) as EngineRequest['entities'],
  };
}

/** Decide one parsed request; never throws (a request Cedar refuses is a deny with `error`). */
export function evalAnswer(
  set: CompiledPolicySet,
  req: EngineRequest | { error: string },
  cache?: EngineResultCache<EngineResult>,
): EvalAnswer {
  if ('error' in req) return { decision: 'deny', determining: [], errors: [], error: req.error };
  try {
    const { result } = decide(set, req, { cache, cacheVolatile: true });
    return {
      decision: result.decision,
      determining: [...result.determining],
      errors: result.errors.map((e) => ({ policy: e.policyId, message: e.message })),
    };
  } catch (err) {
    return { decision: 'deny', determining: [], errors: [], error: (err as Error).message };
  }
}

/** Write through a buffer: one write per ~64 KB, waiting when stdout is full. */
class LineWriter {
  private buf: string[] = [];
  private size = 0;
  constructor(private readonly out: NodeJS.WritableStream) {}
  async line(text: string): Promise<void> {
    this.buf.push(text);
    this.size += text.length + 1;
    if (this.size >= 64 * 1024) await this.flush();
  }
  async flush(): Promise<void> {
    if (this.buf.length === 0) return;
    const chunk = this.buf.join('\n') + '\n';
    this.buf = [];
    this.size = 0;
    if (!this.out.write(chunk)) await new Promise<void>((resolve) => this.out.once('drain', () => resolve()));
  }
}

async function streamRequests(
  set: CompiledPolicySet,
  file: string,
  cache: EngineResultCache<EngineResult> | undefined,
): Promise<number> {
  const input = file === '-' ? process.stdin : createReadStream(file);
  const opened = new Promise<void>((resolve, reject) => {
    if (file === '-') return resolve();
    input.once('open', () => resolve());
    input.once('error', reject);
  });
  try {
    await opened;
  } catch (err) {
    throw new UsageError(`--requests ${file}: ${(err as Error).message}`);
  }
  const writer = new LineWriter(process.stdout);
  const lines = createInterface({ input, crlfDelay: Infinity });
  let n = 0;
  for await (const text of lines) {
    n++;
    if (text.trim() === '') continue;
    const answer = evalAnswer(set, parseEvalRequest(text), cache);
    if (answer.error) answer.error = `line ${n}: ${answer.error}`;
    await writer.line(JSON.stringify(answer));
  }
  await writer.flush();
  return 0;
}

function wholeNumber(text: unknown, flag: string): number {
  if (typeof text !== 'string' || !/^\d{1,9}$/.test(text))
    throw new UsageError(`${flag} must be a whole number, got "${String(text)}"`);
  return Number(text);
}

export const evalCommand: Command = {
  path: ['eval'],
  summary: 'decide Cedar requests (any principal, action, resource) against a policy directory',
  usage: 'eval [--policies DIR] (--request FILE | --requests FILE.jsonl)',
  options: {
    policies: { type: 'string', description: `Policy directory (default ${DEFAULT_POLICIES_DIR})`, valueName: 'DIR' },
    request: {
      type: 'string',
      description:
        'One request as JSON: {"principal":{"type","id"},"action":{…},"resource":{…},"context":{…},"entities":[…]}; - for stdin',
      valueName: 'FILE',
    },
    requests: {
      type: 'string',
      description: 'One request per line (JSON lines); one answer per line out; - for stdin',
      valueName: 'FILE',
    },
    'cache-entries': {
      type: 'string',
      description: `Decision cache entries while streaming, 0 for none (default ${DEFAULT_DECISION_CACHE_ENTRIES})`,
      valueName: 'N',
    },
    ...ENGINE_OPTION,
  },
  details: [
    'Answers: {"decision":"allow"|"deny","determining":[policy ids],"errors":[{"policy","message"}]};',
    'a request that cannot be evaluated is a deny with "error" saying why.',
    'Exit code for --request: 0 when allowed, 1 when denied, 2 on a usage or policy error; --requests: 0 once all lines are answered.',
  ].join('\n'),
  async run(values) {
    const one = values.request as string | undefined;
    const many = values.requests as string | undefined;
    if ((one === undefined) === (many === undefined))
      throw new UsageError('eval needs exactly one of --request FILE or --requests FILE.jsonl');
    applyEngineOption(values);
    const entries =
      values['cache-entries'] === undefined
        ? DEFAULT_DECISION_CACHE_ENTRIES
        : wholeNumber(values['cache-entries'], '--cache-entries');
    const set = (await compilePolicyDirectory((values.policies as string | undefined) ?? DEFAULT_POLICIES_DIR))
      .policySet;
    const cache = entries > 0 ? new EngineResultCache<EngineResult>(entries, DEFAULT_DECISION_CACHE_TTL_MS) : undefined;
    if (many !== undefined) return streamRequests(set, many, cache);
    let text: string;
    try {
      text = one === '-' ? readFileSync(0, 'utf8') : readFileSync(one!, 'utf8');
    } catch (err) {
      throw new UsageError(`--request ${one}: ${(err as Error).message}`);
    }
    const answer = evalAnswer(set, parseEvalRequest(text));
    process.stdout.write(JSON.stringify(answer) + '\n');
    return answer.decision === 'allow' ? 0 : 1;
  },
};
