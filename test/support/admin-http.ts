/** Readers of a server's admin HTTP endpoints: JSON documents and Prometheus samples. */

/** A JSON endpoint (/bundle, /readyz, ...): its status and parsed body. */
// biome-ignore lint/suspicious/noExplicitAny: endpoint documents are probed by path; a wrong path fails the assertion that reads it.
export async function adminJson(port: number, path: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, body: await res.json() };
}

/** The Prometheus text a server (or the alerts receiver) exposes at /metrics. */
export async function metricsText(port: number): Promise<string> {
  return (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
}

function sampleLine(text: string, sample: string): string | undefined {
  return text.split('\n').find((line) => line.startsWith(`${sample} `));
}

/**
 * Value of one sample, e.g. metricValue(text, 'authz_decisions_total{decision="allow",reason="allowed"}').
 * An absent sample reads 0: a labelled counter appears only once counted.
 */
export function metricValue(text: string, sample: string): number {
  const line = sampleLine(text, sample);
  return line === undefined ? 0 : Number(line.slice(sample.length + 1));
}

/** Whether the text has the sample at all (a gauge that was removed, an info metric of an old version). */
export function hasSample(text: string, sample: string): boolean {
  return sampleLine(text, sample) !== undefined;
}

/** metricValue read from a running server's /metrics. */
export async function scrapeMetric(port: number, sample: string): Promise<number> {
  return metricValue(await metricsText(port), sample);
}
