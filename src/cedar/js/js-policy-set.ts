/**
 * A policy set compiled to JS closures, and the evaluation of one slice of it
 * with Cedar's answer rules: deny if any satisfied forbid, else allow if any
 * satisfied permit, else deny; the determining policies are the satisfied
 * forbids (deny) or permits (allow), in set order; a policy whose evaluation
 * errors is skipped and reported, in set order.
 *
 * A slice holding a policy the compiler refused (compile-policy.ts) is left to
 * wasm whole, and so is a request whose data the evaluator cannot read exactly:
 * `evaluateSlice` answers undefined and the caller asks wasm (fallback.ts counts it).
 */
import type { EntityJson } from '../cedar-wasm.js';
import type { CedarValueJson } from '../cedar-wasm.js';
import type { EntityStore } from '../entity-store.js';
import type { EngineResult } from '../engine-result.js';
import type { EntityRef, SlicePart } from '../slicing.js';
import { bigLiteralsOf } from './big-literals.js';
import { compilePolicyJson, UnsupportedPolicy, type PolicyFn } from './compile-policy.js';
import { recordFallback } from './fallback.js';
import { ancestorsOfStore, RequestEnv } from './request-env.js';
import { CedarEvalError, EntityUid, RequestFallback } from './values.js';

export interface JsPolicy {
  readonly id: string;
  readonly forbid: boolean;
  readonly fn: PolicyFn;
}

/** What compiling one policy needs (a CompiledPolicy has it). */
export interface PolicySource {
  id: string;
  effect: 'permit' | 'forbid';
  text: string;
  json: unknown;
}

/** What the evaluator reads of a request (the entities come as the store and the request's overlay). */
export interface JsRequest {
  principal: EntityRef;
  action: EntityRef;
  resource: EntityRef;
  context: Readonly<Record<string, CedarValueJson>>;
}

export class JsPolicySet {
  private readonly compiled = new Map<string, JsPolicy>();
  /** Policies left to wasm, with why. */
  readonly unsupported = new Map<string, string>();
  /** Compiled policies of a slice part (or of any policy list a caller keeps), memoized per list. */
  private readonly byList = new WeakMap<object, readonly JsPolicy[] | null>();

  /** Compile one policy (in set order); a refusal is recorded, not thrown. */
  add(p: PolicySource): void {
    try {
      const fn = compilePolicyJson(p.json as never, bigLiteralsOf(p.text));
      this.compiled.set(p.id, { id: p.id, forbid: p.effect === 'forbid', fn });
    } catch (err) {
      if (!(err instanceof UnsupportedPolicy)) throw err;
      this.unsupported.set(p.id, err.reason);
    }
  }

  static compile(policies: Iterable<PolicySource>): JsPolicySet {
    const set = new JsPolicySet();
    for (const p of policies) set.add(p);
    return set;
  }

  /** The list's compiled policies in set order; null when one of them is left to wasm. */
  private policiesOf(key: object, matching: readonly { id: string }[]): readonly JsPolicy[] | null {
    let hit = this.byList.get(key);
    if (hit !== undefined) return hit;
    const out: JsPolicy[] = [];
    for (const p of matching) {
      const c = this.compiled.get(p.id);
      if (!c) {
        out.length = 0;
        break;
      }
      out.push(c);
    }
    hit = out.length === matching.length ? out : null;
    this.byList.set(key, hit);
    return hit;
  }

  /**
   * Decide a request against the slice's policies; undefined when wasm must
   * (a policy of the slice is unsupported, or the request's data is not read
   * exactly), with the reason recorded.
   */
  evaluateSlice(
    slice: SlicePart,
    req: JsRequest,
    store: EntityStore,
    overlay: ReadonlyMap<string, EntityJson> | undefined,
  ): EngineResult | undefined {
    return this.evaluatePolicies(slice.matching, req, store, overlay);
  }

  /**
   * Decide a request against a list of the set's policies (in set order; a
   * slice part's, or the `@shadow` policies beside the set). The list's
   * compiled form is memoized by identity: pass the same array each time.
   * Undefined when wasm must decide, as for `evaluateSlice`.
   */
  evaluatePolicies(
    matching: readonly { id: string }[],
    req: JsRequest,
    store: EntityStore,
    overlay: ReadonlyMap<string, EntityJson> | undefined,
  ): EngineResult | undefined {
    const policies = this.policiesOf(matching, matching);
    if (policies === null) {
      const id = matching.find((p) => !this.compiled.has(p.id))!.id;
      recordFallback({
        reason: 'unsupported_policy',
        policyId: id,
        detail: this.unsupported.get(id) ?? 'not compiled',
      });
      return undefined;
    }
    const env = new RequestEnv(
      new EntityUid(req.principal.type, req.principal.id),
      new EntityUid(req.action.type, req.action.id),
      new EntityUid(req.resource.type, req.resource.id),
      req.context,
      store,
      ancestorsOfStore(store),
      overlay,
    );
    let permits: string[] | undefined;
    let forbids: string[] | undefined;
    let errors: EngineResult['errors'] | undefined;
    for (const p of policies) {
      let satisfied: boolean;
      try {
        satisfied = p.fn(env);
      } catch (err) {
        if (err instanceof CedarEvalError) {
          (errors ??= []).push({ policyId: p.id, message: `while evaluating policy \`${p.id}\`: ${err.message}` });
          continue;
        }
        if (err instanceof RequestFallback) {
          recordFallback({ reason: 'request_data', detail: err.reason });
          return undefined;
        }
        throw err;
      }
      if (satisfied) {
        if (p.forbid) (forbids ??= []).push(p.id);
        else (permits ??= []).push(p.id);
      }
    }
    if (forbids) return { decision: 'deny', determining: forbids, errors: errors ?? [] };
    if (permits) return { decision: 'allow', determining: permits, errors: errors ?? [] };
    return { decision: 'deny', determining: [], errors: errors ?? [] };
  }
}
