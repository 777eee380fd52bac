/**
 * Parsers for the value syntaxes config accepts (HOST:PORT, durations),
 * shared by the schema and the CLI.
 */
export interface HostPort {
  host: string;
  port: number;
}

export function parseHostPort(s: string): HostPort | undefined {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:\s]*):(\d{1,5})$/.exec(s.trim());
  if (!m) return undefined;
  const port = Number(m[2]);
  if (port > 65535) return undefined;
  return { host: m[1] || '0.0.0.0', port };
}

export function formatHostPort(hp: HostPort): string {
  return `${hp.host}:${hp.port}`;
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** "250ms", "2s", "1m", "1.5s" or a bare number of milliseconds → milliseconds. */
export function parseDurationMs(s: string | number): number | undefined {
  if (typeof s === 'number') return Number.isFinite(s) && s >= 0 ? s : undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(s);
  if (!m) return undefined;
  return Number(m[1]) * UNIT_MS[m[2] ?? 'ms'];
}
