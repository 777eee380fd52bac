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
  /** IP lists (lists/NAME.txt), name without directory and suffix. */
  lists?: PolicyFile[];
  /** IANA timezone for context.hour / context.weekday (bundle.yaml `timezone`); UTC when absent. */
  timezone?: string;
}
