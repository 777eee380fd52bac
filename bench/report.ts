/**
 * Turning measurements into figures: percentiles, the latency plot (one
 * percentile curve per configuration, SVG), and the Markdown table.
 */
export interface LatencySummary {
  count: number;
  p50: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

export function summarise(latenciesMs: number[]): LatencySummary {
  const s = Float64Array.from(latenciesMs).sort();
  const at = (q: number) => (s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]);
  let sum = 0;
  for (const x of s) sum += x;
  return {
    count: s.length,
    p50: at(0.5),
    p99: at(0.99),
    p999: at(0.999),
    max: s.length ? s[s.length - 1] : NaN,
    mean: s.length ? sum / s.length : NaN,
  };
}

/** Points of a percentile curve, on a "nines" scale (50, 90, 99, 99.9, ...). */
export function percentileCurve(latenciesMs: number[], maxNines = 3): Array<[number, number]> {
  const s = Float64Array.from(latenciesMs).sort();
  const out: Array<[number, number]> = [];
  if (s.length === 0) return out;
  const steps = 60;
  for (let k = 0; k <= steps; k++) {
    const nines = Math.log10(2) + (k / steps) * (maxNines - Math.log10(2));
    const q = 1 - 10 ** -nines;
    out.push([nines, s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]]);
  }
  return out;
}

const COLORS = ['#1b9e77', '#d95f02', '#7570b3', '#e7298a', '#66a61e', '#e6ab02', '#a6761d', '#666666'];

export function latencySvg(title: string, series: Array<{ name: string; latenciesMs: number[] }>): string {
  const W = 820;
  const H = 460;
  const left = 70;
  const right = 250;
  const top = 40;
  const bottom = 50;
  const curves = series
    .filter((s) => s.latenciesMs.length > 0)
    .map((s) => ({ name: s.name, pts: percentileCurve(s.latenciesMs) }));
  const all = curves.flatMap((c) => c.pts.map((p) => p[1])).filter((v) => v > 0);
  const lo = 10 ** Math.floor(Math.log10(Math.min(...all, 0.1)));
  const hi = 10 ** Math.ceil(Math.log10(Math.max(...all, 1)));
  const x = (nines: number) => left + ((nines - Math.log10(2)) / (3 - Math.log10(2))) * (W - left - right);
  const y = (ms: number) =>
    top +
    (1 - (Math.log10(Math.max(ms, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * (H - top - bottom);
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
  );
  parts.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  parts.push(`<text x="${left}" y="22" font-size="15" font-weight="bold">${escapeXml(title)}</text>`);
  for (const [label, nines] of [
    ['p50', Math.log10(2)],
    ['p90', 1],
    ['p99', 2],
    ['p99.9', 3],
  ] as const) {
    parts.push(`<line x1="${x(nines)}" y1="${top}" x2="${x(nines)}" y2="${H - bottom}" stroke="#ddd"/>`);
    parts.push(`<text x="${x(nines)}" y="${H - bottom + 18}" text-anchor="middle">${label}</text>`);
  }
  for (let d = lo; d <= hi * 1.0001; d *= 10) {
    parts.push(`<line x1="${left}" y1="${y(d)}" x2="${W - right}" y2="${y(d)}" stroke="#ddd"/>`);
    parts.push(
      `<text x="${left - 6}" y="${y(d) + 4}" text-anchor="end">${d >= 1 ? d.toFixed(0) : d.toString()} ms</text>`,
    );
  }
  parts.push(`<text x="${(left + W - right) / 2}" y="${H - 12}" text-anchor="middle">percentile</text>`);
  parts.push(
    `<text x="16" y="${(top + H - bottom) / 2}" transform="rotate(-90 16 ${(top + H - bottom) / 2})" text-anchor="middle">latency (log scale)</text>`,
  );
  curves.forEach((c, i) => {
    const color = COLORS[i % COLORS.length];
    parts.push(
      `<polyline fill="none" stroke="${color}" stroke-width="2" points="${c.pts.map(([n, ms]) => `${x(n).toFixed(1)},${y(ms).toFixed(1)}`).join(' ')}"/>`,
    );
    parts.push(
      `<line x1="${W - right + 15}" y1="${top + 10 + i * 20}" x2="${W - right + 40}" y2="${top + 10 + i * 20}" stroke="${color}" stroke-width="3"/>`,
    );
    parts.push(`<text x="${W - right + 46}" y="${top + 14 + i * 20}">${escapeXml(c.name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}

function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export const ms = (v: number | undefined): string =>
  v === undefined || Number.isNaN(v) ? 'n/a' : v < 10 ? v.toFixed(2) : v.toFixed(1);
export const num = (v: number | undefined): string =>
  v === undefined || Number.isNaN(v) ? 'n/a' : Math.round(v).toLocaleString('en-US');

export function markdownTable(header: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

/** One gap between ticks of the server's 1 ms stall clock (bench/servers/child.mjs), split by where the time went. */
export interface Stall {
  /** performance.now() of the server process when the gap began (ms since it started). */
  atMs: number;
  atEpochMs: number;
  wallMs: number;
  /** The main thread on a CPU: the server's own work (JavaScript, GC, compile steps). */
  cpuMs: number;
  /** The main thread runnable but waiting for a CPU other processes held. */
  waitMs: number;
}

export interface StallParts {
  /** False where /proc/thread-self/schedstat is missing: then only wall times are known. */
  schedstat: boolean;
  /** Longest time the main thread ran on a CPU without the loop turning. */
  longestOnCpuMs: number;
  /** The longest gaps (≥ 3 ms), longest first. */
  stalls: Stall[];
}

/** "41.2 ms: 8.1 on CPU, 30.9 waiting for a CPU, 2.2 blocked" (the 1 ms timer period counted as on CPU's share of nothing). */
export function describeStall(s: Stall | undefined, schedstat: boolean): string {
  if (!s) return 'none ≥ 3 ms';
  if (!schedstat) return `${s.wallMs.toFixed(1)} ms (no schedstat: not split)`;
  const blocked = Math.max(0, s.wallMs - s.cpuMs - s.waitMs);
  return `${s.wallMs.toFixed(1)} ms: ${s.cpuMs.toFixed(1)} on CPU, ${s.waitMs.toFixed(1)} waiting for a CPU, ${blocked.toFixed(1)} blocked`;
}

/** The stalls that began within [fromEpochMs, toEpochMs]. */
export function stallsWithin(parts: StallParts, fromEpochMs: number, toEpochMs: number): Stall[] {
  return parts.stalls.filter((s) => s.atEpochMs + s.wallMs >= fromEpochMs && s.atEpochMs <= toEpochMs);
}
