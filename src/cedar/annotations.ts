/**
 * Policy annotations that shape answers. Parsed once at compile time so a bad
 * value (e.g. @status("abc")) refuses the whole set instead of surprising a request.
 */
import {
  EFFECT_ANNOTATIONS,
  EffectAnnotationError,
  parseEffectAnnotations,
  type AllowEffects,
} from '../effects/effect-syntax.js';

export interface PolicyAnnotations {
  id?: string;
  status?: number;
  message?: string;
  retryAfterSeconds?: number;
  shadow: boolean;
  /** What an allow this permit determines does to the request and response (docs/safety.md, "Sanitize and propagate"). */
  effects?: AllowEffects;
}

/**
 * Every annotation this server reads. Others (`@description`, `@owner`, …) are
 * the authors' own and pass untouched, but one that looks like a misspelling of
 * ours refuses the set: a misspelt `@strip_header` would otherwise silently leave
 * a credential in place. The `lockdown*` ones describe the policies `authz lockdown` writes.
 */
export const KNOWN_ANNOTATIONS: ReadonlySet<string> = new Set([
  'id',
  'status',
  'message',
  'retry_after',
  'shadow',
  'lockdown',
  'lockdown_methods',
  'lockdown_by',
  'lockdown_at',
  'lockdown_reason',
  ...EFFECT_ANNOTATIONS,
]);

export class AnnotationError extends Error {
  /** The annotation at fault (without `@`), so the caller can point at its line. */
  constructor(
    message: string,
    readonly annotation?: string,
  ) {
    super(message);
  }
}

/**
 * @param where names the policy in messages (`file:line`)
 * @param whereAnnotation names one annotation's place, when the caller knows lines
 */
export function parseAnnotations(
  raw: Record<string, string> | undefined,
  where: string,
  effect: 'permit' | 'forbid' = 'permit',
  whereAnnotation: (annotation: string) => string = () => where,
): PolicyAnnotations {
  const a = raw ?? {};
  for (const name in a) {
    const meant = KNOWN_ANNOTATIONS.has(name) ? undefined : misspeltAnnotation(name);
    if (meant !== undefined) {
      throw new AnnotationError(`${whereAnnotation(name)}: unknown annotation @${name}; did you mean @${meant}?`, name);
    }
  }
  const out: PolicyAnnotations = { shadow: 'shadow' in a };
  if (a.id !== undefined) {
    if (!a.id.trim()) throw new AnnotationError(`${whereAnnotation('id')}: @id must not be empty`, 'id');
    out.id = a.id;
  }
  if (a.status !== undefined) {
    const n = Number(a.status);
    if (!/^\d{3}$/.test(a.status) || n < 200 || n > 599) {
      throw new AnnotationError(
        `${whereAnnotation('status')}: @status("${a.status}") must be an HTTP status between 200 and 599`,
        'status',
      );
    }
    out.status = n;
  }
  if (a.message !== undefined) out.message = a.message;
  if (a.retry_after !== undefined) {
    if (!/^\d{1,9}$/.test(a.retry_after)) {
      throw new AnnotationError(
        `${whereAnnotation('retry_after')}: @retry_after("${a.retry_after}") must be a whole number of seconds`,
        'retry_after',
      );
    }
    out.retryAfterSeconds = Number(a.retry_after);
  }
  try {
    const effects = parseEffectAnnotations(a);
    if (effects) {
      if (effect !== 'permit') {
        const name = EFFECT_ANNOTATIONS.find((n) => n in a)!;
        throw new AnnotationError(
          `${whereAnnotation(name)}: @${name} is on a forbid; effects apply to the allows permit policies determine`,
          name,
        );
      }
      out.effects = effects;
    }
  } catch (err) {
    if (err instanceof EffectAnnotationError)
      throw new AnnotationError(`${whereAnnotation(err.annotation)}: ${err.message}`, err.annotation);
    throw err;
  }
  return out;
}

/** Edits that still read as a slip of the keyboard rather than another word. */
const MAX_MISSPELLING_EDITS = 2;

/** The known annotation `name` is probably a misspelling of (case, `-`/`_` and up to two edits), if any. */
export function misspeltAnnotation(name: string): string | undefined {
  const folded = name.toLowerCase().replace(/-/g, '_');
  for (const known of KNOWN_ANNOTATIONS) {
    if (folded === known) return known;
    // Short names (@id) would match unrelated words two edits away.
    if (known.length > 4 && editDistance(folded, known) <= MAX_MISSPELLING_EDITS) return known;
  }
  return undefined;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length];
}
