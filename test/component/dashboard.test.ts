/**
 * The Grafana dashboard shows every metric the server exports, and asks for
 * no metric the server does not export: its expressions are compared with
 * the names a real server registers.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXAMPLE_POLICIES } from '../support/policy-dir.js';
import { startTestServer, type TestServer } from '../support/start-server.js';

interface Panel {
  title: string;
  targets?: { expr: string }[];
  fieldConfig?: { defaults?: { unit?: string } };
}

const dashboard = JSON.parse(
  readFileSync(path.resolve(import.meta.dirname, '../../deploy/grafana-dashboard.json'), 'utf8'),
) as { panels: Panel[] };
const expressions = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));
/** authz_* series the dashboard reads, with histogram suffixes folded into their metric. */
const dashboardMetrics = new Set(
  expressions.flatMap((e) =>
    [...e.matchAll(/\b(authz_[a-z0-9_]+)/g)].map((m) => m[1].replace(/_(bucket|sum|count)$/, '')),
  ),
);

/** Where the metrics are declared, to check the conditional ones exist. */
const metricsSource = readFileSync(new URL('../../src/observability/metrics.ts', import.meta.url), 'utf8');

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ policies: EXAMPLE_POLICIES });
});
afterAll(async () => {
  await server.close();
});

describe('the Grafana dashboard', () => {
  it('shows every authz_* metric the server registers, and only those', async () => {
    const registered = (await server.metrics.registry.getMetricsAsJSON())
      .map((m) => m.name)
      .filter((n) => n.startsWith('authz_'));
    expect(registered.length).toBeGreaterThan(15);
    // Registered only with --notify (this server has none): the dashboard shows them too.
    const withPush = ['authz_push_connected', 'authz_push_last_message_age_seconds'];
    expect(registered.some((n) => withPush.includes(n))).toBe(false);
    expect(metricsSource).toEqual(expect.stringContaining(`'${withPush[0]}'`));
    expect(metricsSource).toEqual(expect.stringContaining(`'${withPush[1]}'`));
    expect([...dashboardMetrics].sort()).toEqual([...new Set([...registered, ...withPush])].sort());
  });

  it('names ratios 0–1 with _ratio, as Prometheus does, and shows them as such', async () => {
    const names = (await server.metrics.registry.getMetricsAsJSON()).map((m) => m.name);
    expect(names.filter((n) => /percent/.test(n))).toEqual([]);
    const load = dashboard.panels.find((p) => p.targets?.some((t) => t.expr.includes('authz_load_ratio')))!;
    expect(load.fieldConfig?.defaults?.unit).toBe('percentunit');
  });

  it('shows "no data" for the time since the last sync when the servers read a directory (the gauge stays 0)', () => {
    const sync = dashboard.panels.find((p) => p.title === 'Time since last bundle sync')!;
    expect(sync.targets![0].expr).toMatch(/authz_bundle_last_sync_timestamp_seconds\{[^}]*\}\) > 0\)$/);
  });
});
