/**
 * entities.json as Cedar reads it when a schema is given. With a schema, Cedar
 * parses an attribute typed as an entity from `{"type", "id"}` and one typed as
 * an extension from a plain string (`"10.0.0.1"` for `ipaddr`) or `{"fn","arg"}`,
 * and it adds the schema's action hierarchy (`action "GET" in [read]`) to the
 * entities. Requests are evaluated without the schema (Cedar would parse it on
 * every call and refuse request-made entities it does not declare, such as a
 * JWT's extra claims), so the bundle's entities are rewritten once, at load,
 * into the explicit form (`__entity`, `__extn`) that means the same thing
 * without a schema, and the schema's actions are added as entities.
 *
 * Only values the schema types are rewritten; anything else is left as written
 * (Cedar has already accepted the file against the schema by then).
 */
import { cedar, type CedarValueJson, type EntityJson } from './cedar-wasm.js';
import { uidKey, uidOf } from './entity-store.js';

type SchemaType = { type: string; name?: string; element?: SchemaType; attributes?: Record<string, SchemaType> };

interface Namespace {
  commonTypes?: Record<string, SchemaType>;
  entityTypes?: Record<string, { shape?: SchemaType; tags?: SchemaType }>;
  actions?: Record<string, { memberOf?: { id: string; type?: string }[]; appliesTo?: { context?: SchemaType } }>;
}

/** Extension type names → the constructor Cedar's JSON escape names. */
const EXTENSION_CONSTRUCTOR: Record<string, string> = {
  ipaddr: 'ip',
  decimal: 'decimal',
  datetime: 'datetime',
  duration: 'duration',
};
const PRIMITIVES = new Set(['String', 'Long', 'Bool', 'Boolean']);

export class SchemaEntities {
  private readonly commonTypes = new Map<string, SchemaType>();
  private readonly shapes = new Map<string, { shape?: SchemaType; tags?: SchemaType }>();
  /** The schema's actions as entities (uid and parents), for the action hierarchy. */
  readonly actions: EntityJson[] = [];
  /** Each action's context type, by uid key. */
  private readonly contexts = new Map<string, SchemaType>();

  /**
   * `resolved`: the schema in Cedar's JSON form with common types resolved
   * (`resolvedSchemaJson`), computed where Cedar is loaded: in the compile
   * worker for the server, so this class itself needs no wasm.
   */
  constructor(
    readonly schemaText: string,
    resolved: unknown,
  ) {
    const namespaces = resolved as Record<string, Namespace>;
    for (const [ns, body] of Object.entries(namespaces)) {
      const qualify = (name: string): string => (ns ? `${ns}::${name}` : name);
      for (const [name, t] of Object.entries(body.commonTypes ?? {})) this.commonTypes.set(qualify(name), t);
      for (const [name, t] of Object.entries(body.entityTypes ?? {})) this.shapes.set(qualify(name), t);
      const actionType = qualify('Action');
      for (const [id, a] of Object.entries(body.actions ?? {})) {
        const parents = (a.memberOf ?? []).map((p) => ({ type: p.type ?? actionType, id: p.id }));
        this.actions.push({ uid: { type: actionType, id }, attrs: {}, parents });
        if (a.appliesTo?.context) this.contexts.set(uidKey(actionType, id), a.appliesTo.context);
      }
    }
  }

  /** One entity in explicit form: typed attributes and tags rewritten, the rest as written. */
  normalizeEntity(e: EntityJson): EntityJson {
    const { type } = uidOf(e.uid);
    const decl = this.shapes.get(type);
    if (!decl) return e;
    const out: EntityJson = { ...e };
    if (e.attrs && decl.shape)
      out.attrs = this.normalizeValue(e.attrs as CedarValueJson, decl.shape, 0) as Record<string, CedarValueJson>;
    if (e.tags && decl.tags) {
      const tags: Record<string, CedarValueJson> = {};
      for (const [k, v] of Object.entries(e.tags)) define(tags, k, this.normalizeValue(v, decl.tags, 0));
      out.tags = tags;
    }
    return out;
  }

  /** A request's context in explicit form, read against its action's context type (as Cedar reads it with the schema). */
  normalizeContext(
    action: { type: string; id: string },
    context: Record<string, CedarValueJson>,
  ): Record<string, CedarValueJson> {
    const t = this.contexts.get(uidKey(action.type, action.id));
    return t ? (this.normalizeValue(context, t, 0) as Record<string, CedarValueJson>) : context;
  }

  /**
   * The context's shape for request checks (request-check.ts): a string where
   * the action's context type says String is shown as `s` (Cedar accepts any
   * string there); everything else is kept whole. Undefined when the action
   * has no context type here.
   */
  contextShape(action: { type: string; id: string }, context: Record<string, CedarValueJson>): string | undefined {
    const t = this.contexts.get(uidKey(action.type, action.id));
    return t ? this.shapeValue(context, t, 0) : undefined;
  }

  private shapeValue(v: CedarValueJson, t: SchemaType, depth: number): string {
    if (depth > 64) return JSON.stringify(v);
    const kind = t.type === 'EntityOrCommon' ? (t.name ?? '') : t.type;
    if (kind === 'String' && typeof v === 'string') return 's';
    if (kind === 'Set' && Array.isArray(v) && t.element)
      return `[${v.map((x) => this.shapeValue(x, t.element!, depth + 1)).join(',')}]`;
    if (kind === 'Record' && isPlainObject(v)) {
      const rec = v as Record<string, CedarValueJson>;
      return `{${Object.keys(rec)
        .map((k) => {
          const at = t.attributes?.[k];
          return `${JSON.stringify(k)}:${at ? this.shapeValue(rec[k], at, depth + 1) : JSON.stringify(rec[k])}`;
        })
        .join(',')}}`;
    }
    const common = this.commonTypes.get(kind);
    if (common) return this.shapeValue(v, common, depth + 1);
    return JSON.stringify(v);
  }

  private normalizeValue(v: CedarValueJson, t: SchemaType, depth: number): CedarValueJson {
    // Common types may refer to each other; a schema cannot make an infinite type, but a bad one must not hang us.
    if (depth > 64) return v;
    const kind = t.type;
    if (kind === 'Set') {
      return Array.isArray(v) && t.element ? v.map((x) => this.normalizeValue(x, t.element!, depth + 1)) : v;
    }
    if (kind === 'Record') {
      if (!isPlainObject(v)) return v;
      const rec = v as Record<string, CedarValueJson>;
      const out: Record<string, CedarValueJson> = {};
      for (const k of Object.keys(rec)) {
        const at = t.attributes?.[k];
        define(out, k, at ? this.normalizeValue(rec[k], at, depth + 1) : rec[k]);
      }
      return out;
    }
    if (kind === 'Entity') return entityValue(v);
    if (kind === 'Extension') return extensionValue(v, t.name ?? '');
    if (kind === 'EntityOrCommon') return this.named(v, t.name ?? '', depth);
    return this.named(v, kind, depth);
  }

  /** A type written by name: a common type, an entity type, an extension or a primitive. */
  private named(v: CedarValueJson, name: string, depth: number): CedarValueJson {
    if (PRIMITIVES.has(name)) return v;
    const common = this.commonTypes.get(name);
    if (common) return this.normalizeValue(v, common, depth + 1);
    const bare = name.startsWith('__cedar::') ? name.slice('__cedar::'.length) : name;
    if (EXTENSION_CONSTRUCTOR[bare]) return extensionValue(v, bare);
    if (this.shapes.has(name)) return entityValue(v);
    return v;
  }
}

/** The schema in Cedar's JSON form, common types resolved: what SchemaEntities reads. Throws with Cedar's messages. */
export function resolvedSchemaJson(schemaText: string): unknown {
  const answer = cedar.schemaToJsonWithResolvedTypes(schemaText);
  if (answer.type !== 'success')
    throw new Error(`schema.cedarschema: ${answer.errors.map((e) => e.message).join('; ')}`);
  return answer.json;
}

function isPlainObject(v: CedarValueJson): boolean {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function define(out: Record<string, CedarValueJson>, k: string, v: CedarValueJson): void {
  // defineProperty: `out["__proto__"] = v` would set a prototype instead of a key.
  Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
}

/** `{"type","id"}` → `{"__entity": {...}}`; the explicit form is kept. */
function entityValue(v: CedarValueJson): CedarValueJson {
  if (!isPlainObject(v)) return v;
  const rec = v as Record<string, unknown>;
  if ('__entity' in rec) return v;
  if (typeof rec.type === 'string' && typeof rec.id === 'string')
    return { __entity: { type: rec.type, id: rec.id } } as CedarValueJson;
  return v;
}

/** `"10.0.0.1"` or `{"fn","arg"}` → `{"__extn": {...}}`; the explicit form is kept. */
function extensionValue(v: CedarValueJson, typeName: string): CedarValueJson {
  const fn = EXTENSION_CONSTRUCTOR[typeName];
  if (!fn) return v;
  if (typeof v === 'string') return { __extn: { fn, arg: v } } as CedarValueJson;
  if (!isPlainObject(v)) return v;
  const rec = v as Record<string, unknown>;
  if ('__extn' in rec) return v;
  if (typeof rec.fn === 'string' && typeof rec.arg === 'string')
    return { __extn: { fn: rec.fn, arg: rec.arg } } as CedarValueJson;
  return v;
}
