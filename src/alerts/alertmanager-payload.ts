/**
 * Alertmanager's webhook body (version 4), read strictly enough to act on:
 * https://prometheus.io/docs/alerting/latest/configuration/#webhook_config
 * Fields we do not use are allowed (Alertmanager adds some over time).
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';

/** Larger than any real group (Alertmanager truncates with max_alerts); bigger bodies get 413. */
export const MAX_ALERT_BODY_BYTES = 1024 * 1024;

const alertSchema = z.object({
  status: z.enum(['firing', 'resolved']),
  labels: z.record(z.string(), z.string()),
  annotations: z.record(z.string(), z.string()).optional(),
  startsAt: z.string().optional(),
  endsAt: z.string().optional(),
  fingerprint: z.string().optional(),
});

const payloadSchema = z.object({
  version: z.string().optional(),
  receiver: z.string().optional(),
  status: z.enum(['firing', 'resolved']),
  groupKey: z.string().optional(),
  alerts: z.array(alertSchema),
});

export interface ReceivedAlert {
  name: string;
  status: 'firing' | 'resolved';
  labels: Record<string, string>;
  /** Alertmanager's fingerprint, or one made from the labels (the same labels are the same alert). */
  fingerprint: string;
}

export interface AlertPayload {
  receiver: string;
  groupKey: string | null;
  alerts: ReceivedAlert[];
}

export type PayloadResult = { ok: true; payload: AlertPayload } | { ok: false; message: string };

export function parseAlertPayload(body: string): PayloadResult {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return { ok: false, message: 'body is not JSON' };
  }
  const r = payloadSchema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0];
    return {
      ok: false,
      message: `not an Alertmanager webhook payload: ${issue.path.join('.') || 'body'}: ${issue.message}`,
    };
  }
  if (r.data.version !== undefined && r.data.version !== '4')
    return { ok: false, message: `webhook payload version "${r.data.version}" is not supported (expected "4")` };
  return {
    ok: true,
    payload: {
      receiver: r.data.receiver ?? '',
      groupKey: r.data.groupKey ?? null,
      alerts: r.data.alerts.map((a) => ({
        name: a.labels.alertname ?? '',
        status: a.status,
        labels: a.labels,
        fingerprint: a.fingerprint || labelFingerprint(a.labels),
      })),
    },
  };
}

function labelFingerprint(labels: Record<string, string>): string {
  const canonical = Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join('\n');
  return createHash('sha256').update(canonical).digest('hex').slice(0, 16);
}
