/**
 * The shadow version lives in the pointer, beside the active one:
 *
 *   current.json = { version, sha256, activated_at, previous,
 *                    shadow: { version, sha256, set_at } }
 *
 * Every server polls the pointer already, so naming a shadow version there
 * reaches the whole fleet within one poll interval, with no new key to watch.
 * Servers read the field (bundle/sources/shadow-version-loader.ts); operators
 * set and clear it (operator/shadow-pointer.ts).
 */
import { z } from 'zod';
import type { BundlePointer } from './bundle-store.js';

export const shadowFieldSchema = z.object({
  version: z.string().min(1),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  set_at: z.string(),
});

export type ShadowField = z.infer<typeof shadowFieldSchema>;

/** The pointer's shadow field, when it holds a usable one. */
export function shadowOf(pointer: BundlePointer): ShadowField | undefined {
  const parsed = shadowFieldSchema.safeParse((pointer as Record<string, unknown>).shadow);
  return parsed.success ? parsed.data : undefined;
}
