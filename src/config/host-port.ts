/**
 * The HOST:PORT syntax of listen addresses, shared by the schema and the CLI.
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
