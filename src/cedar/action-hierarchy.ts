/**
 * The action hierarchy the server provides, so policies can say
 * `action in Action::"read"` instead of listing methods.
 */
import type { EntityJson } from './cedar-wasm.js';

export const READ_METHODS = ['GET', 'HEAD', 'OPTIONS', 'TRACE'] as const;
export const WRITE_METHODS = ['POST', 'PUT', 'PATCH', 'DELETE'] as const;
export const CONNECT_ACTION = 'connect';
/** The resource type of Envoy checks (`Service::"orders"`): the compile warms the slices of its known services. */
export const RESOURCE_TYPE = 'Service';

const GROUP_OF: Record<string, string> = {};
for (const m of READ_METHODS) GROUP_OF[m] = 'read';
for (const m of WRITE_METHODS) GROUP_OF[m] = 'write';

/** Action entities for one action id: itself with its group as parent, plus the group. */
export function actionEntities(actionId: string): EntityJson[] {
  const group = GROUP_OF[actionId];
  if (!group) return [{ uid: { type: 'Action', id: actionId }, attrs: {}, parents: [] }];
  return [
    { uid: { type: 'Action', id: actionId }, attrs: {}, parents: [{ type: 'Action', id: group }] },
    { uid: { type: 'Action', id: group }, attrs: {}, parents: [] },
  ];
}

/** The whole built-in hierarchy as entities: every method with its group, the groups, and `connect`. */
export function builtinActionEntities(): EntityJson[] {
  const out: EntityJson[] = [];
  for (const m of [...READ_METHODS, ...WRITE_METHODS]) out.push(actionEntities(m)[0]);
  out.push(
    { uid: { type: 'Action', id: 'read' }, attrs: {}, parents: [] },
    { uid: { type: 'Action', id: 'write' }, attrs: {}, parents: [] },
    { uid: { type: 'Action', id: CONNECT_ACTION }, attrs: {}, parents: [] },
  );
  return out;
}
