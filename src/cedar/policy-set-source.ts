/**
 * What the engine compiles: the text of a policy set, already read from a
 * directory or unpacked from a bundle. Knows nothing of where it came from.
 */
export interface PolicyFile {
  /** Path relative to the policy directory, e.g. "orders.cedar". */
  name: string;
  text: string;
}

export interface PolicySetSource {
  version: string;
  policies: PolicyFile[];
  /** Text of schema.cedarschema, when present. */
  schema?: string;
  /** Parsed entities.json, when present. */
  entities?: unknown;
  /** entities.json as written, so a refusal can name the line of the entity it is about. */
  entitiesText?: string;
}
