/**
 * grpc.health.v1.Health/Watch as a grpc-js client sees it, over both
 * transports: the current status at once, one message when readiness
 * changes, SERVICE_UNKNOWN for a service we do not serve (the call stays
 * open), and a clean end (status OK) when the server shuts down. The
 * http2-specific frame cases (cancel, GOAWAY) are in http2-transport.test.ts.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { TRANSPORTS } from '../../src/config/transport-schema.js';
import { healthService } from '../../src/envoy/protos.js';
import { policyDir, removeDir } from '../support/policy-dir.js';
import { startTestServer, type TestServer } from '../support/start-server.js';

const ALLOW_READS = '@id("reads") permit(principal, action in Action::"read", resource);';

interface Watch {
  statuses: string[];
  /** The call's final status (code and details). */
  ended: Promise<grpc.StatusObject>;
  /** Resolves once `n` messages have arrived. */
  messages(n: number): Promise<string[]>;
  cancel(): void;
  close(): void;
}

function watch(port: number, service: string): Watch {
  const Health = healthService();
  const client = new Health(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const call = (
    client as unknown as { Watch(req: { service: string }): grpc.ClientReadableStream<{ status: string }> }
  ).Watch({ service });
  const statuses: string[] = [];
  const waiting: Array<{ n: number; resolve: (s: string[]) => void }> = [];
  call.on('data', (res: { status: string }) => {
    statuses.push(res.status);
    for (const w of waiting.splice(0)) {
      if (statuses.length >= w.n) w.resolve([...statuses]);
      else waiting.push(w);
    }
  });
  call.on('error', () => undefined);
  const ended = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
  return {
    statuses,
    ended,
    messages: (n) =>
      statuses.length >= n ? Promise.resolve([...statuses]) : new Promise((resolve) => waiting.push({ n, resolve })),
    cancel: () => call.cancel(),
    close: () => client.close(),
  };
}

describe.each(TRANSPORTS)('Health/Watch over the %s transport', (transport) => {
  let dir: string | undefined;
  let server: TestServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
    if (dir) removeDir(dir);
    dir = undefined;
  });

  it('sends NOT_SERVING, then SERVING once a policy set compiles, then ends with OK at shutdown', async () => {
    dir = policyDir({ 'x.cedar': 'nonsense' });
    server = await startTestServer({ policies: dir, transport });
    const whole = watch(server.grpcPort, '');
    const authz = watch(server.grpcPort, 'envoy.service.auth.v3.Authorization');
    const unknown = watch(server.grpcPort, 'no.such.Service');
    try {
      expect(await whole.messages(1)).toEqual(['NOT_SERVING']);
      expect(await authz.messages(1)).toEqual(['NOT_SERVING']);
      expect(await unknown.messages(1)).toEqual(['SERVICE_UNKNOWN']);
      writeFileSync(path.join(dir, 'x.cedar'), ALLOW_READS);
      expect(await whole.messages(2)).toEqual(['NOT_SERVING', 'SERVING']);
      expect(await authz.messages(2)).toEqual(['NOT_SERVING', 'SERVING']);
      await server.close();
      server = undefined;
      for (const w of [whole, authz, unknown]) expect((await w.ended).code).toBe(grpc.status.OK);
      // The unknown service stayed open and unknown until the end; nothing changed for it.
      expect(unknown.statuses).toEqual(['SERVICE_UNKNOWN']);
      expect(whole.statuses).toEqual(['NOT_SERVING', 'SERVING']);
    } finally {
      for (const w of [whole, authz, unknown]) w.close();
    }
  });

  it('a watch the client cancels ends for it alone; the others still get changes', async () => {
    dir = policyDir({ 'x.cedar': 'nonsense' });
    server = await startTestServer({ policies: dir, transport });
    const cancelled = watch(server.grpcPort, '');
    const kept = watch(server.grpcPort, '');
    try {
      await cancelled.messages(1);
      await kept.messages(1);
      cancelled.cancel();
      expect((await cancelled.ended).code).toBe(grpc.status.CANCELLED);
      writeFileSync(path.join(dir, 'x.cedar'), ALLOW_READS);
      expect(await kept.messages(2)).toEqual(['NOT_SERVING', 'SERVING']);
      expect(cancelled.statuses).toEqual(['NOT_SERVING']);
    } finally {
      cancelled.close();
      kept.close();
    }
  });

  it('a watch with a deadline ends DEADLINE_EXCEEDED at it', async () => {
    dir = policyDir({ 'main.cedar': ALLOW_READS });
    server = await startTestServer({ policies: dir, transport });
    const client = new (healthService())(`127.0.0.1:${server.grpcPort}`, grpc.credentials.createInsecure());
    try {
      const call = (
        client as unknown as {
          Watch(req: { service: string }, options: grpc.CallOptions): grpc.ClientReadableStream<{ status: string }>;
        }
      ).Watch({ service: '' }, { deadline: Date.now() + 500 });
      const statuses: string[] = [];
      call.on('data', (res: { status: string }) => statuses.push(res.status));
      call.on('error', () => undefined);
      const status = await new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
      expect(status.code).toBe(grpc.status.DEADLINE_EXCEEDED);
      expect(statuses).toEqual(['SERVING']);
    } finally {
      client.close();
    }
  });
});
