/**
 * Worker thread: the parsing, validation and analysis half of a compile, on
 * its own Cedar instance, so that the serving thread is never held by it
 * (parsing 1,000 policies with `policySetTextToParts` + `policyToJson` +
 * `validate` takes 0.5–2 s of CPU here, in calls that cannot be split).
 *
 * What crosses back is kept cheap for the receiving thread: policies in
 * batches, each policy's JSON as a string (parsed there only if someone reads
 * it), plus the two small things slicing needs (scope and read set). Sent as
 * objects, the JSON of 1,000 policies is ~100k objects: measured, its
 * structured-clone decoding and the scavenges that follow held the serving
 * thread for 20–100 ms.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { EntityJson } from './cedar-wasm.js';
import { parseEntities, parsePolicies, PolicySetError, validateAgainstSchema, type CompiledPolicy } from './compile.js';
import type { PolicySetSource } from './policy-set-source.js';
import { analysePolicies, projectEntity, unionOfReads, type ReadSet } from './projection.js';
import { scopeOfPolicy, type PolicyScope } from './slicing.js';

export const POLICY_BATCH = 100;

export interface ShippedPolicy extends Omit<CompiledPolicy, 'json'> {
  jsonText: string;
  scope: PolicyScope;
  reads: ReadSet;
}

export type WorkerMessage =
  | { type: 'policies'; batch: ShippedPolicy[] }
  | { type: 'done'; entities: EntityJson[]; leanEntities: EntityJson[] }
  | { type: 'error'; message: string };

function run(source: PolicySetSource): void {
  const post = (m: WorkerMessage): void => parentPort!.postMessage(m);
  try {
    const policies = parsePolicies(source);
    if (source.schema !== undefined) validateAgainstSchema(source.schema, policies);
    const store = parseEntities(source.entities, source.schema);
    const shipped = [...policies.values()].map(({ json, ...rest }): ShippedPolicy => {
      const p = { ...rest, json };
      return { ...rest, jsonText: JSON.stringify(json), scope: scopeOfPolicy(p), reads: analysePolicies([p]) };
    });
    for (let i = 0; i < shipped.length; i += POLICY_BATCH) post({ type: 'policies', batch: shipped.slice(i, i + POLICY_BATCH) });
    const allReads = unionOfReads(shipped.map((p) => p.reads));
    const entities = store.all();
    post({ type: 'done', entities, leanEntities: entities.map((e) => projectEntity(e, allReads)) });
  } catch (err) {
    const e = err as Error;
    post({ type: 'error', message: e instanceof PolicySetError ? e.message : `compile failed: ${e.message}` });
  }
}

if (parentPort && workerData?.source) run(workerData.source as PolicySetSource);
