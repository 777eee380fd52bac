import { describe, expect, it } from 'vitest';
import type { BundlePointer, StoreLocation } from '../../src/bundle/store/bundle-store.js';
import {
  fleetRows,
  formatAge,
  formatFleetTable,
  stragglers,
  type Heartbeat,
} from '../../src/bundle/notify/fleet-status.js';
import { locationUrl, pointerKey, readHint } from '../../src/bundle/notify/pointer-channel.js';
import { helpText, parseCommandArgs, type Command } from '../../src/cli/command-framework.js';

const location: StoreLocation = { bucket: 'b', prefix: 'bundles/', bundle: 'mesh' };
const pointer = (version: string, sha = 'a'.repeat(64)): BundlePointer => ({
  version,
  sha256: sha,
  activated_at: '2026-11-30T12:00:00.000Z',
  previous: null,
});
const entry = (value: unknown, operation: 'PUT' | 'DEL' = 'PUT') => ({
  operation,
  value: Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)),
});

describe('pointer messages are read as hints', () => {
  const rows: { name: string; entry: ReturnType<typeof entry>; expected: unknown }[] = [
    {
      name: 'a pointer for this store',
      entry: entry({ store: locationUrl(location), pointer: pointer('v2'), published_at: 'x' }),
      expected: { kind: 'pointer', pointer: pointer('v2') },
    },
    {
      name: 'a pointer for another store',
      entry: entry({ store: 's3://other/bundles/mesh', pointer: pointer('v2'), published_at: 'x' }),
      expected: { kind: 'invalid', problem: 'names another store (s3://other/bundles/mesh)' },
    },
    { name: 'not JSON', entry: entry('{nope'), expected: { kind: 'invalid', problem: 'not JSON' } },
    {
      name: 'a pointer with a bad sha256',
      entry: entry({ store: locationUrl(location), pointer: { ...pointer('v2'), sha256: 'xyz' }, published_at: 'x' }),
      expected: { kind: 'invalid', problem: 'pointer.sha256: expected a lowercase hex sha256' },
    },
    { name: 'no pointer at all', entry: entry({ store: locationUrl(location) }), expected: { kind: 'invalid' } },
    { name: 'a delete', entry: entry('', 'DEL'), expected: { kind: 'deleted' } },
  ];
  for (const row of rows) {
    it(row.name, () => {
      expect(readHint(row.entry, location)).toMatchObject(row.expected as object);
    });
  }

  it('keys are valid NATS keys and differ per store location', () => {
    const a = pointerKey(location);
    expect(a).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(pointerKey({ ...location, prefix: 'other/' })).not.toBe(a);
    expect(pointerKey({ ...location, bundle: 'mesh2' })).not.toBe(a);
    expect(pointerKey({ bucket: 'weird bucket?', prefix: 'a b/', bundle: 'x.y' })).toMatch(/^[A-Za-z0-9_-]+$/);
  });
});

describe('fleet rows against the store pointer', () => {
  const beat = (id: string, version: string | null, over: Partial<Heartbeat> = {}): Heartbeat => ({
    server_id: id,
    host: 'h',
    pid: 1,
    store: 's3://b/bundles/mesh',
    version,
    sha256: version ? 'a'.repeat(64) : null,
    shadow_version: null,
    policies: 3,
    ready: version !== null,
    last_sync: '2026-11-30T12:00:09.000Z',
    last_error: null,
    uptime_s: 90,
    push: { connected: true, last_message_at: null },
    at: '2026-11-30T12:00:09.000Z',
    ...over,
  });
  const now = Date.parse('2026-11-30T12:00:10.000Z');
  const rows: { name: string; beat: Heartbeat; state: string; lagMs: number | null }[] = [
    { name: 'runs the pointer version', beat: beat('a', 'v2'), state: 'current', lagMs: null },
    { name: 'runs an older version', beat: beat('b', 'v1'), state: 'behind', lagMs: 10_000 },
    {
      name: 'same name, other bytes',
      beat: beat('c', 'v2', { sha256: 'b'.repeat(64) }),
      state: 'behind',
      lagMs: 10_000,
    },
    { name: 'has no set', beat: beat('d', null), state: 'not-ready', lagMs: 10_000 },
    {
      name: 'is stale (not ready) on the right version',
      beat: beat('e', 'v2', { ready: false }),
      state: 'not-ready',
      lagMs: null,
    },
  ];
  for (const row of rows) {
    it(`a server that ${row.name}`, () => {
      const [r] = fleetRows([row.beat], pointer('v2'), now);
      expect({ state: r.state, lagMs: r.lagMs, syncAgeMs: r.syncAgeMs }).toEqual({
        state: row.state,
        lagMs: row.lagMs,
        syncAgeMs: 1000,
      });
    });
  }

  it('the table marks stragglers and sums up', () => {
    const all = fleetRows(
      rows.map((r) => r.beat),
      pointer('v2'),
      now,
    );
    expect(stragglers(all).map((r) => r.beat.server_id)).toEqual(['b', 'c', 'd', 'e']);
    const text = formatFleetTable(all, pointer('v2'));
    const lines = text.split('\n');
    expect(lines[0]).toMatch(
      /^\s+SERVER\s+HOST\s+PID\s+VERSION\s+SHADOW\s+POLICIES\s+STATE\s+LAG\s+LAST SYNC\s+PUSH\s+UPTIME/,
    );
    expect(lines[1]).toMatch(/^ {3}a\s+h\s+1\s+v2\s+-\s+3\s+current\s+-\s+1\.0s ago\s+connected\s+1m30s/);
    expect(lines[2]).toMatch(/^!\s+b\s+h\s+1\s+v1\s.*behind\s+10\.0s/);
    expect(text).toContain(
      'store pointer: v2 (activated 2026-11-30T12:00:00.000Z); 5 live server(s), 1 current, 4 straggling',
    );
  });

  const ages: [number | null, string][] = [
    [null, '-'],
    [12, '12ms'],
    [1234, '1.2s'],
    [75_000, '1m15s'],
    [3_900_000, '1h5m'],
  ];
  for (const [ms, text] of ages) it(`formats ${ms} ms as ${text}`, () => expect(formatAge(ms)).toBe(text));
});

describe('options that may be given bare', () => {
  const cmd: Command = {
    path: ['x'],
    summary: 's',
    usage: 'x',
    args: ['V'],
    options: {
      wait: { type: 'string', bareValue: '30s', description: 'wait', valueName: 'DURATION' },
      bucket: { type: 'string', description: 'b' },
    },
    run: async () => 0,
  };
  const rows: { argv: string[]; wait: unknown; positionals: string[] }[] = [
    { argv: ['v1', '--wait'], wait: '30s', positionals: ['v1'] },
    { argv: ['v1', '--wait', '--bucket', 'b'], wait: '30s', positionals: ['v1'] },
    { argv: ['v1', '--wait=5s'], wait: '5s', positionals: ['v1'] },
    { argv: ['v1'], wait: undefined, positionals: ['v1'] },
  ];
  for (const row of rows) {
    it(row.argv.join(' '), () => {
      const { values, positionals } = parseCommandArgs(cmd, row.argv);
      expect(values.wait).toBe(row.wait);
      expect(positionals).toEqual(row.positionals);
    });
  }
  it('refuses a duration written after a space (it would read as a second argument)', () => {
    expect(() => parseCommandArgs(cmd, ['v1', '--wait', '5s'])).toThrow(/unexpected argument "5s"/);
  });
  it('help shows the optional value', () => expect(helpText(cmd)).toContain('--wait[=DURATION]'));
});
