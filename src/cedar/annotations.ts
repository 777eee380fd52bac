/**
 * Policy annotations that shape answers. Parsed once at compile time so a bad
 * value (e.g. @status("abc")) refuses the whole set instead of surprising a request.
 */
export interface PolicyAnnotations {
  id?: string;
  status?: number;
  message?: string;
  retryAfterSeconds?: number;
  shadow: boolean;
}

export class AnnotationError extends Error {}

export function parseAnnotations(raw: Record<string, string> | undefined, where: string): PolicyAnnotations {
  const a = raw ?? {};
  const out: PolicyAnnotations = { shadow: 'shadow' in a };
  if (a.id !== undefined) {
    if (!a.id.trim()) throw new AnnotationError(`${where}: @id must not be empty`);
    out.id = a.id;
  }
  if (a.status !== undefined) {
    const n = Number(a.status);
    if (!/^\d{3}$/.test(a.status) || n < 200 || n > 599) {
      throw new AnnotationError(`${where}: @status("${a.status}") must be an HTTP status between 200 and 599`);
    }
    out.status = n;
  }
  if (a.message !== undefined) out.message = a.message;
  if (a.retry_after !== undefined) {
    if (!/^\d{1,9}$/.test(a.retry_after)) {
      throw new AnnotationError(`${where}: @retry_after("${a.retry_after}") must be a whole number of seconds`);
    }
    out.retryAfterSeconds = Number(a.retry_after);
  }
  return out;
}
