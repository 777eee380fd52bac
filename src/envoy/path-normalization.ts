/**
 * `context.path` as Envoy forwards it with `normalize_path: true` and
 * `merge_slashes: true` (the shipped envoy/envoy.yaml; Istio's default
 * `pathNormalization: BASE` does the first). When Envoy already normalised,
 * this changes nothing; when a deployment forgot to, a policy on `/admin*`
 * still sees `/public/../admin` as `/admin`. The path exactly as sent stays in
 * `context.rawPath`.
 *
 * Envoy's normalize_path (Chromium's URL path canonicaliser, RFC 3986 §5.2.4
 * and §6.2.2): `\` is a `/`; percent-encoded unreserved characters are decoded
 * (`%2e` is a dot, so `%2e%2e` is a `..` segment); other escapes are kept as
 * they are (`%2F` stays: that is `path_with_escaped_slashes_action`'s job);
 * `.` and `..` segments are removed; a path not starting with `/` gets one.
 * Envoy refuses a path with an encoded NUL (`%00`) with a 400; so do we.
 * merge_slashes then collapses runs of `/`.
 */

export type NormalizedPath = { ok: true; path: string } | { ok: false; message: string };

const UNRESERVED = /[A-Za-z0-9\-._~]/;
/** What normalisation could change: `\`, `%`, `/.`, `//`, or no leading `/`. Most paths have none (and Envoy already normalised them). */
const MAY_CHANGE = /[\\%]|\/\.|\/\/|^(?!\/)/;

export function normalizePath(raw: string): NormalizedPath {
  if (!MAY_CHANGE.test(raw)) return { ok: true, path: raw };
  let decoded = '';
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i];
    if (c === '\\') {
      decoded += '/';
    } else if (c === '%' && i + 2 < raw.length && isHex(raw[i + 1]) && isHex(raw[i + 2])) {
      const code = parseInt(raw.slice(i + 1, i + 3), 16);
      if (code === 0) return { ok: false, message: 'the path contains an encoded NUL (%00)' };
      const ch = String.fromCharCode(code);
      decoded += UNRESERVED.test(ch) ? ch : raw.slice(i, i + 3);
      i += 2;
    } else {
      decoded += c;
    }
  }
  return { ok: true, path: mergeSlashes(removeDotSegments(decoded)) };
}

function isHex(c: string | undefined): boolean {
  return c !== undefined && /^[0-9A-Fa-f]$/.test(c);
}

/** RFC 3986 §5.2.4 on a path made absolute; a trailing `.` or `..` leaves a trailing `/`. */
function removeDotSegments(path: string): string {
  const segments = (path.startsWith('/') ? path.slice(1) : path).split('/');
  const out: string[] = [];
  segments.forEach((seg, n) => {
    const last = n === segments.length - 1;
    if (seg === '.' || seg === '..') {
      if (seg === '..' && out.length > 0) out.pop();
      if (last) out.push('');
    } else {
      out.push(seg);
    }
  });
  return `/${out.join('/')}`;
}

function mergeSlashes(path: string): string {
  return path.replace(/\/{2,}/g, '/');
}
