/**
 * The rules file of `authz alerts serve`: which Alertmanager alerts put the
 * fleet in which mode.
 *
 *   rules:
 *     - alert: DDoSSuspected          # the alert's alertname label
 *       labels: { severity: critical } # every one must match (optional)
 *       mode: high-alert
 *
 * An alert no rule matches changes nothing (it is counted as unmapped).
 */
import { readFileSync } from 'node:fs';
import YAML from 'yaml';
import { z } from 'zod';
import { MODES, type Mode } from '../bundle/bundle-settings.js';

export class AlertRulesError extends Error {}

const ENGAGED_MODES = MODES.filter((m) => m !== 'normal') as [Mode, ...Mode[]];

const ruleSchema = z
  .object({
    alert: z.string().min(1, 'expected the alertname to match'),
    labels: z.record(z.string(), z.string()).default({}),
    // "normal" is where the receiver returns when alerts resolve, not something an alert asks for.
    mode: z.enum(ENGAGED_MODES, { message: `expected one of ${ENGAGED_MODES.join(', ')}` }),
  })
  .strict();

const rulesSchema = z.object({ rules: z.array(ruleSchema).min(1, 'expected at least one rule') }).strict();

export type AlertRule = z.infer<typeof ruleSchema>;

export function parseAlertRules(text: string, source = 'rules file'): AlertRule[] {
  let doc: unknown;
  try {
    doc = YAML.parse(text);
  } catch (err) {
    throw new AlertRulesError(`${source}: not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  const r = rulesSchema.safeParse(doc ?? {});
  if (!r.success) {
    const issue = r.error.issues[0];
    const where = issue.path
      .map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`))
      .join('')
      .replace(/^\./, '');
    throw new AlertRulesError(`${source}: ${where || 'top level'}: ${issue.message}`);
  }
  return r.data.rules;
}

export function loadAlertRules(file: string): AlertRule[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new AlertRulesError(
      `rules file ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : (err as Error).message}`,
    );
  }
  return parseAlertRules(text, `rules file ${file}`);
}

/** The first rule an alert's labels match, if any. */
export function ruleFor(rules: readonly AlertRule[], labels: Record<string, string>): AlertRule | undefined {
  return rules.find((r) => labels.alertname === r.alert && Object.entries(r.labels).every(([k, v]) => labels[k] === v));
}

/** The strictest of several modes (later in MODES is stricter). */
export function strictestMode(modes: Iterable<Mode>): Mode {
  let out: Mode = 'normal';
  for (const m of modes) if (MODES.indexOf(m) > MODES.indexOf(out)) out = m;
  return out;
}
