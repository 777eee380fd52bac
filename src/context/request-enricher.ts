/**
 * Everything the server knows about a request beyond Envoy's message: who the
 * end user is (JWT) and the extra context fields. Built once from the config
 * (server and `authz check` alike) and handed to the pipeline (src/pipeline/decide-check.ts).
 */
import type { RequestModel } from '../envoy/request-model.js';
import {
  contextFields,
  DEFAULT_FIELD_SETTINGS,
  type ContextFieldSettings,
  type ContextFields,
  type FieldSources,
} from './context-fields.js';
import type { IdentityOutcome, JwtIdentity } from './jwt-identity.js';

const NONE: IdentityOutcome = Object.freeze({ kind: 'none' });

export class RequestEnricher {
  /** No end-user identity, no forwarded addresses, no risk, no load: the workload principal and plain context. */
  static readonly NONE = new RequestEnricher(undefined, DEFAULT_FIELD_SETTINGS);

  constructor(
    readonly identity: JwtIdentity | undefined,
    readonly fieldSettings: ContextFieldSettings,
  ) {}

  /** Synchronous unless a bearer token must be verified for the first time. */
  identify(input: RequestModel): IdentityOutcome | Promise<IdentityOutcome> {
    return this.identity ? this.identity.resolve(input) : NONE;
  }

  fields(input: RequestModel, set: FieldSources): ContextFields {
    return contextFields(input, set, this.fieldSettings);
  }

  /**
   * The challenge to attach to a 401 a policy returned (RFC 9110 requires one on
   * every 401), when this server accepts bearer tokens at all.
   */
  get challenge(): string | undefined {
    return this.identity ? `Bearer realm="${this.identity.settings.realm.replace(/["\\]/g, '')}"` : undefined;
  }

  start(): Promise<void> {
    return this.identity ? this.identity.start() : Promise.resolve();
  }

  stop(): void {
    this.identity?.stop();
  }
}
