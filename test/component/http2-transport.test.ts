/**
 * The node:http2 gRPC server (`--transport http2`) at the frame level: what a
 * client sees for gRPC framing that is wrong (content-type, length prefix,
 * compressed flag, size, grpc-timeout, method), for deadlines in every unit,
 * for bytes that are not a CheckRequest, and on shutdown (GOAWAY).
 */
import http2 from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { PROTO_DIR, PROTO_LOADER_OPTIONS } from '../../src/envoy/protos.js';
import type { WireCheckResponse } from '../../src/envoy/wire-types.js';
import { connectAuthz, denyBody } from '../support/grpc-client.js';
import {
  CHECK_PATH,
  checkRequestBytes,
  connectRawCheck,
  httpRequestFields,
  lenField,
} from '../support/hostile-requests.js';
import { copyExamplePolicies, removeDir } from '../support/policy-dir.js';
import { FRONTEND, istioRequest } from '../support/requests.js';
import { metricValue } from '../support/admin-http.js';
import { startTestServer, type TestServer } from '../support/start-server.js';

const MIB = 1024 * 1024;
const HEALTH_CHECK = '/grpc.health.v1.Health/Check';
// Enums as numbers, so HTTP statuses read as Envoy reads them.
const check = (
  grpc.loadPackageDefinition(
    protoLoader.loadSync(path.join(PROTO_DIR, 'envoy/service/auth/v3/external_auth.proto'), {
      ...PROTO_LOADER_OPTIONS,
      enums: Number,
    }),
  ) as unknown as {
    envoy: { service: { auth: { v3: { Authorization: grpc.ServiceClientConstructor } } } };
  }
).envoy.service.auth.v3.Authorization.service.Check;
const GOOD = check.requestSerialize(
  istioRequest({ principal: FRONTEND, path: '/orders/1', ext: { service: 'orders' } }),
) as Buffer;

let dir: string;
let server: TestServer;

beforeAll(async () => {
  dir = copyExamplePolicies();
  server = await startTestServer({ policies: dir, transport: 'http2' });
});
afterAll(async () => {
  await server?.close();
  removeDir(dir);
});

interface RawAnswer {
  status: number;
  headers: http2.IncomingHttpHeaders;
  trailers: http2.IncomingHttpHeaders;
  body: Buffer;
  /** grpc-status from the trailers, or from the headers of a trailers-only answer. */
  grpcStatus?: number;
  grpcMessage?: string;
}

function framed(message: Buffer, flag = 0): Buffer {
  const prefix = Buffer.alloc(5);
  prefix[0] = flag;
  prefix.writeUInt32BE(message.length, 1);
  return Buffer.concat([prefix, message]);
}

/** One call on a fresh connection, with the headers and DATA given. */
function rawCall(port: number, headers: http2.OutgoingHttpHeaders, data: Buffer[]): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', reject);
    const stream = session.request({
      ':method': 'POST',
      ':path': CHECK_PATH,
      'content-type': 'application/grpc',
      te: 'trailers',
      ...headers,
    });
    const answer: RawAnswer = { status: 0, headers: {}, trailers: {}, body: Buffer.alloc(0) };
    const chunks: Buffer[] = [];
    stream.on('response', (h) => {
      answer.status = Number(h[':status']);
      answer.headers = h;
    });
    stream.on('trailers', (t) => (answer.trailers = t));
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('error', () => undefined);
    stream.on('close', () => {
      session.close();
      answer.body = Buffer.concat(chunks);
      const source = answer.trailers['grpc-status'] !== undefined ? answer.trailers : answer.headers;
      if (source['grpc-status'] !== undefined) answer.grpcStatus = Number(source['grpc-status']);
      if (source['grpc-message'] !== undefined) answer.grpcMessage = decodeURIComponent(String(source['grpc-message']));
      resolve(answer);
    });
    for (const d of data) stream.write(d);
    stream.end();
  });
}

function checkResponseOf(answer: RawAnswer): WireCheckResponse {
  expect(answer.body.length).toBeGreaterThan(5);
  return check.responseDeserialize(answer.body.subarray(5)) as WireCheckResponse;
}

describe('gRPC framing a client gets wrong', () => {
  it('a well-formed call is answered 200, one message, grpc-status 0 in the trailers', async () => {
    const answer = await rawCall(server.grpcPort, {}, [framed(GOOD)]);
    expect(answer.status).toBe(200);
    expect(answer.headers['content-type']).toBe('application/grpc');
    expect(answer.grpcStatus).toBe(0);
    expect(checkResponseOf(answer).status.code).toBe(0);
  });

  it('the message may arrive split over many DATA frames, the prefix too', async () => {
    const whole = framed(GOOD);
    const pieces = Array.from({ length: whole.length }, (_, i) => whole.subarray(i, i + 1));
    const answer = await rawCall(server.grpcPort, {}, pieces);
    expect(answer.grpcStatus).toBe(0);
    expect(checkResponseOf(answer).status.code).toBe(0);
  });

  const rows: {
    name: string;
    headers?: http2.OutgoingHttpHeaders;
    data: Buffer[];
    status: number;
    grpcStatus: number;
    message: RegExp;
  }[] = [
    {
      name: 'content-type application/json',
      headers: { 'content-type': 'application/json' },
      data: [framed(GOOD)],
      status: 415,
      grpcStatus: 13,
      message: /content-type "application\/json" is not application\/grpc/,
    },
    {
      name: 'content-type application/grpcx',
      headers: { 'content-type': 'application/grpcx' },
      data: [framed(GOOD)],
      status: 415,
      grpcStatus: 13,
      message: /is not application\/grpc/,
    },
    {
      name: 'a truncated length prefix',
      data: [Buffer.from([0, 0, 0])],
      status: 200,
      grpcStatus: 13,
      message: /ended inside a message/,
    },
    {
      name: 'a body shorter than its prefix says',
      data: [framed(GOOD).subarray(0, 20)],
      status: 200,
      grpcStatus: 13,
      message: /ended inside a message/,
    },
    { name: 'no message at all', data: [], status: 200, grpcStatus: 13, message: /without a request message/ },
    {
      name: 'two messages on a unary method',
      data: [framed(GOOD), framed(GOOD)],
      status: 200,
      grpcStatus: 12,
      message: /more than one request message/,
    },
    {
      name: 'the compressed flag with grpc-encoding gzip',
      headers: { 'grpc-encoding': 'gzip' },
      data: [framed(GOOD, 1)],
      status: 200,
      grpcStatus: 12,
      message: /grpc-encoding gzip\) are not supported/,
    },
    {
      name: 'the compressed flag without a grpc-encoding',
      data: [framed(GOOD, 1)],
      status: 200,
      grpcStatus: 13,
      message: /compressed flag set without a grpc-encoding/,
    },
    {
      name: 'a flag byte that is neither 0 nor 1',
      data: [framed(GOOD, 7)],
      status: 200,
      grpcStatus: 13,
      message: /invalid message flag 7/,
    },
    {
      name: 'grpc-timeout without a unit',
      headers: { 'grpc-timeout': '100' },
      data: [framed(GOOD)],
      status: 200,
      grpcStatus: 13,
      message: /Invalid grpc-timeout value "100"/,
    },
    {
      name: 'grpc-timeout of 9 digits',
      headers: { 'grpc-timeout': '123456789S' },
      data: [framed(GOOD)],
      status: 200,
      grpcStatus: 13,
      message: /Invalid grpc-timeout/,
    },
    {
      name: 'an unknown method',
      headers: { ':path': '/envoy.service.auth.v3.Authorization/Nope' },
      data: [framed(GOOD)],
      status: 200,
      grpcStatus: 12,
      message: /Method not found: \/envoy.service.auth.v3.Authorization\/Nope/,
    },
    {
      name: 'two request messages on Health/Watch (server streaming takes one)',
      headers: { ':path': '/grpc.health.v1.Health/Watch' },
      data: [framed(Buffer.alloc(0)), framed(Buffer.alloc(0))],
      status: 200,
      grpcStatus: 12,
      message: /more than one request message/,
    },
    {
      name: 'a Health/Watch request that is not a HealthCheckRequest',
      headers: { ':path': '/grpc.health.v1.Health/Watch' },
      // Wire type 7 does not exist.
      data: [framed(Buffer.from([0x0f]))],
      status: 200,
      grpcStatus: 13,
      message: /HealthCheckRequest is not valid protobuf/,
    },
  ];
  for (const row of rows) {
    it(`${row.name}: HTTP ${row.status}, grpc-status ${row.grpcStatus}`, async () => {
      const answer = await rawCall(server.grpcPort, row.headers ?? {}, row.data);
      expect(answer.status).toBe(row.status);
      expect(answer.grpcStatus).toBe(row.grpcStatus);
      expect(answer.grpcMessage).toMatch(row.message);
      // Errors are trailers-only: no message, the status in the one HEADERS frame.
      expect(answer.body.length).toBe(0);
    });
  }

  it('a message over max-request-bytes is a 431 deny decision as soon as its prefix arrives, never buffered', async () => {
    // Announce 2 MiB against the 1 MiB default and send only the prefix: the answer cannot have waited for the bytes.
    const prefix = Buffer.alloc(5);
    prefix.writeUInt32BE(2 * MIB, 1);
    const answer = await rawCall(server.grpcPort, {}, [prefix]);
    expect(answer.grpcStatus).toBe(0);
    const res = checkResponseOf(answer);
    expect(res.denied_response!.status.code).toBe(431);
    expect(denyBody(res).message).toMatch(/more than the limit of 1048576 bytes \(max-request-bytes\)/);
  });

  it('a 9 MiB message from a grpc-js client is a 431 deny decision, not RESOURCE_EXHAUSTED', async () => {
    const raw = connectRawCheck(server.grpcPort);
    try {
      const bytes = checkRequestBytes({
        httpFields: Buffer.concat([httpRequestFields(), lenField(12, Buffer.alloc(9 * MIB, 0x61))]),
      });
      const res = await raw.check(bytes);
      expect(res.denied_response!.status.code).toBe(431);
      expect(denyBody(res).message).toMatch(/more than the limit of 1048576 bytes/);
    } finally {
      raw.close();
    }
  });

  it('bytes that are not a CheckRequest are a 400 deny decision, not a gRPC error', async () => {
    const raw = connectRawCheck(server.grpcPort);
    try {
      const res = await raw.check(Buffer.from([0x0a, 0x10, 0x22]));
      expect(res.denied_response!.status.code).toBe(400);
      expect(denyBody(res).message).toMatch(/not valid protobuf/);
    } finally {
      raw.close();
    }
  });

  it('grpc-message is percent-encoded UTF-8', async () => {
    const answer = await rawCall(server.grpcPort, { ':path': '/x/caf\u00e9%' }, [framed(GOOD)]);
    const header = String(answer.headers['grpc-message']);
    expect(header).toBe('Method not found: /x/caf%C3%A9%25');
    expect(answer.grpcMessage).toBe('Method not found: /x/caf\u00e9%');
  });
});

describe('deadlines from grpc-timeout', () => {
  for (const timeout of ['1H', '30M', '60S', '60000m', '60000000u', '99999999n']) {
    it(`${timeout} is accepted and the check is decided`, async () => {
      const answer = await rawCall(server.grpcPort, { 'grpc-timeout': timeout }, [framed(GOOD)]);
      expect(answer.grpcStatus).toBe(0);
      expect(checkResponseOf(answer).status.code).toBe(0);
    });
  }

  it('a deadline already passed when the check is decided is answered by the fail mode (503), as with grpc-js', async () => {
    const answer = await rawCall(server.grpcPort, { 'grpc-timeout': '1n' }, [framed(GOOD)]);
    expect(answer.grpcStatus).toBe(0);
    const res = checkResponseOf(answer);
    expect(res.denied_response!.status.code).toBe(503);
    expect(denyBody(res).message).toMatch(/before the deadline Envoy set/);
  });

  it('the grpc-js client deadline reaches the handler', async () => {
    const client = connectAuthz(server.grpcPort);
    try {
      expect(
        (
          await client.check(
            istioRequest({ principal: FRONTEND, path: '/orders/1', ext: { service: 'orders' } }),
            30_000,
          )
        ).status.code,
      ).toBe(0);
    } finally {
      client.close();
    }
  });
});

describe('Health/Check over raw frames', () => {
  it('answers SERVING for the Authorization service', async () => {
    const request = lenField(1, 'envoy.service.auth.v3.Authorization');
    const answer = await rawCall(server.grpcPort, { ':path': HEALTH_CHECK }, [framed(request)]);
    expect(answer.grpcStatus).toBe(0);
    // HealthCheckResponse { status = 1 (SERVING) }
    expect([...answer.body.subarray(5)]).toEqual([0x08, 0x01]);
  });
});

describe('connections', () => {
  it('half-sent messages are dropped at the pending-bytes bound, as on grpc-js', async () => {
    const bounded = await startTestServer({
      policies: dir,
      transport: 'http2',
      maxPendingRequestBytes: String(2 * MIB),
      grpcReceiveTimeout: '2s',
    });
    try {
      const session = http2.connect(`http://127.0.0.1:${bounded.grpcPort}`);
      session.on('error', () => undefined);
      const streams = Array.from({ length: 4 }, () => {
        const stream = session.request({
          ':method': 'POST',
          ':path': CHECK_PATH,
          'content-type': 'application/grpc',
          te: 'trailers',
        });
        stream.on('error', () => undefined);
        stream.resume();
        const prefix = Buffer.alloc(5);
        prefix.writeUInt32BE(1_000_000, 1);
        stream.write(Buffer.concat([prefix, Buffer.alloc(700_000, 0x61)]));
        return new Promise<number>((resolve) => stream.once('close', () => resolve(stream.rstCode ?? -1)));
      });
      const codes = await Promise.all(streams);
      session.close();
      for (const code of codes) expect(code).toBe(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
      const text = await bounded.metricsText();
      expect(
        metricValue(text, 'authz_grpc_calls_dropped_total{cause="memory"}') +
          metricValue(text, 'authz_grpc_calls_dropped_total{cause="receive_timeout"}'),
      ).toBe(4);
      expect(metricValue(text, 'authz_grpc_pending_request_bytes')).toBe(0);
    } finally {
      await bounded.close();
    }
  });

  it('shutdown sends GOAWAY: an open connection is told to go away and the call in flight is answered', async () => {
    const closing = await startTestServer({ policies: dir, transport: 'http2' });
    const session = http2.connect(`http://127.0.0.1:${closing.grpcPort}`);
    session.on('error', () => undefined);
    const connected = new Promise((r) => session.once('connect', r));
    const goaway = new Promise<number>((resolve) => session.once('goaway', (code: number) => resolve(code)));
    // A call whose message is still on its way when the shutdown starts.
    const stream = session.request({
      ':method': 'POST',
      ':path': CHECK_PATH,
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    stream.on('error', () => undefined);
    const whole = framed(GOOD);
    stream.write(whole.subarray(0, 10));
    const trailers = new Promise<http2.IncomingHttpHeaders>((resolve) => stream.once('trailers', resolve));
    stream.resume(); // trailers come after the body is read
    // The server has the stream once it answers a ping sent after it.
    await connected;
    await new Promise((r) => session.ping(r));
    const closed = closing.close();
    expect(await goaway).toBe(http2.constants.NGHTTP2_NO_ERROR);
    stream.end(whole.subarray(10));
    expect((await trailers)['grpc-status']).toBe('0');
    await closed;
    session.close();
  });

  it('a request with 2000 headers in the CheckRequest is refused with 431 by the decoder', async () => {
    const headers = Object.fromEntries(Array.from({ length: 2000 }, (_, i) => [`x-extra-${i}`, 'v']));
    const bytes = check.requestSerialize(
      istioRequest({ principal: FRONTEND, path: '/orders/1', headers, ext: { service: 'orders' } }),
    ) as Buffer;
    const answer = await rawCall(server.grpcPort, {}, [framed(bytes)]);
    expect(checkResponseOf(answer).denied_response!.status.code).toBe(431);
    // And a plain request from the envelope helpers is decided.
    const plain = await rawCall(server.grpcPort, {}, [framed(checkRequestBytes({ httpFields: httpRequestFields() }))]);
    expect(checkResponseOf(plain).denied_response?.status.code ?? 200).not.toBe(400);
  });
});

/** An open call whose DATA the test writes piece by piece; the answer's messages are split as they arrive. */
function openCall(port: number, path: string, headers: http2.OutgoingHttpHeaders = {}) {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  session.on('error', () => undefined);
  const stream = session.request({
    ':method': 'POST',
    ':path': path,
    'content-type': 'application/grpc',
    te: 'trailers',
    ...headers,
  });
  stream.on('error', () => undefined);
  let body = Buffer.alloc(0);
  const messages: Buffer[] = [];
  const waiting: Array<() => void> = [];
  stream.on('data', (chunk: Buffer) => {
    body = Buffer.concat([body, chunk]);
    while (body.length >= 5 && body.length >= 5 + body.readUInt32BE(1)) {
      messages.push(body.subarray(5, 5 + body.readUInt32BE(1)));
      body = body.subarray(5 + body.readUInt32BE(1));
    }
    for (const w of waiting.splice(0)) w();
  });
  const trailers = new Promise<http2.IncomingHttpHeaders>((resolve) => {
    stream.once('trailers', resolve);
    stream.once('response', (h) => h['grpc-status'] !== undefined && resolve(h));
  });
  const goaway = new Promise<number>((resolve) => session.once('goaway', resolve));
  return {
    session,
    stream,
    messages,
    trailers,
    goaway,
    /** Resolves once `n` messages have arrived. */
    async received(n: number): Promise<Buffer[]> {
      while (messages.length < n) await new Promise<void>((r) => waiting.push(r));
      return messages;
    },
    /** Writes each piece in a DATA frame of its own (a PING round trip after each). */
    async sendPieces(pieces: Buffer[]): Promise<void> {
      for (const p of pieces) {
        stream.write(p);
        await new Promise((r) => session.ping(r));
      }
    },
  };
}

const REFLECTION_V1 = '/grpc.reflection.v1.ServerReflection/ServerReflectionInfo';
// ServerReflectionRequest fields: host = 1, file_containing_symbol = 4, list_services = 7.
const LIST_SERVICES = lenField(7, '');
const SYMBOL_REQUEST = Buffer.concat([lenField(1, 'localhost'), lenField(4, 'grpc.health.v1.Health')]);
/** ServerReflectionResponse field numbers of the answers: file_descriptor_response = 4, list_services_response = 6. */
function responseFieldOf(message: Buffer): number {
  // The message starts with original_request (2) when the request had no host, else valid_host (1); find the answer field.
  let at = 0;
  while (at < message.length) {
    const field = message[at] >> 3;
    let length = 0;
    let shift = 0;
    let i = at + 1;
    for (; message[i] & 0x80; i++, shift += 7) length |= (message[i] & 0x7f) << shift;
    length |= message[i] << shift;
    if (field > 2) return field;
    at = i + 1 + length;
  }
  return 0;
}

describe('gRPC reflection over raw frames (bidi streaming)', () => {
  it('two requests in one DATA frame and one split over byte-sized frames: three answers in order, OK at half-close', async () => {
    const call = openCall(server.grpcPort, REFLECTION_V1);
    try {
      call.stream.write(Buffer.concat([framed(LIST_SERVICES), framed(SYMBOL_REQUEST)]));
      expect((await call.received(2)).map(responseFieldOf)).toEqual([6, 4]);
      const third = framed(LIST_SERVICES);
      await call.sendPieces(Array.from({ length: third.length }, (_, i) => third.subarray(i, i + 1)));
      expect((await call.received(3)).map(responseFieldOf)).toEqual([6, 4, 6]);
      // The call stays open until the client half-closes.
      call.stream.end();
      expect((await call.trailers)['grpc-status']).toBe('0');
    } finally {
      call.session.close();
    }
  });

  it('a half-close inside a request message is INTERNAL, after the answers already sent', async () => {
    const call = openCall(server.grpcPort, REFLECTION_V1);
    try {
      call.stream.end(Buffer.concat([framed(LIST_SERVICES), framed(SYMBOL_REQUEST).subarray(0, 8)]));
      const trailers = await call.trailers;
      expect(call.messages.map(responseFieldOf)).toEqual([6]);
      expect(trailers['grpc-status']).toBe('13');
      expect(decodeURIComponent(String(trailers['grpc-message']))).toMatch(/ended inside a message/);
    } finally {
      call.session.close();
    }
  });

  it('a request message over 64 KiB is RESOURCE_EXHAUSTED at its prefix', async () => {
    const answer = await rawCall(server.grpcPort, { ':path': REFLECTION_V1 }, [
      framed(lenField(7, 'x'.repeat(70_000))),
    ]);
    expect(answer.grpcStatus).toBe(8);
    expect(answer.grpcMessage).toMatch(/more than 65536 bytes/);
  });
});

const HEALTH_WATCH = '/grpc.health.v1.Health/Watch';
const SERVING = [0x08, 0x01];

describe('Health/Watch over raw frames (server streaming)', () => {
  it('the status at once; a client that cancels (RST_STREAM) leaves the connection serving', async () => {
    const call = openCall(server.grpcPort, HEALTH_WATCH);
    call.stream.end(framed(Buffer.alloc(0)));
    expect([...(await call.received(1))[0]]).toEqual(SERVING);
    const closed = new Promise((r) => call.stream.once('close', r));
    call.stream.close(http2.constants.NGHTTP2_CANCEL);
    await closed;
    // The same connection still answers.
    const again = call.session.request({
      ':method': 'POST',
      ':path': HEALTH_CHECK,
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    const chunks: Buffer[] = [];
    again.on('data', (c: Buffer) => chunks.push(c));
    again.end(framed(Buffer.alloc(0)));
    await new Promise((r) => again.once('close', r));
    expect([...Buffer.concat(chunks).subarray(5)]).toEqual(SERVING);
    call.session.close();
  });

  it('the request split over DATA frames, and the half-close in a frame of its own', async () => {
    const call = openCall(server.grpcPort, HEALTH_WATCH);
    const request = framed(lenField(1, 'envoy.service.auth.v3.Authorization'));
    await call.sendPieces([request.subarray(0, 3), request.subarray(3, 9), request.subarray(9)]);
    // Nothing is answered before the half-close: a second message would still be refused.
    expect(call.messages).toHaveLength(0);
    call.stream.end();
    expect([...(await call.received(1))[0]]).toEqual(SERVING);
    call.stream.close(http2.constants.NGHTTP2_CANCEL);
    call.session.close();
  });

  it('a connection reaching its max age is sent GOAWAY and its open Watch ends with grpc-status 0', async () => {
    const aging = await startTestServer({
      policies: dir,
      transport: 'http2',
      grpcMaxConnectionAge: '1s',
      grpcMaxConnectionAgeGrace: '5s',
    });
    try {
      const call = openCall(aging.grpcPort, HEALTH_WATCH);
      call.stream.end(framed(Buffer.alloc(0)));
      expect([...(await call.received(1))[0]]).toEqual(SERVING);
      expect(await call.goaway).toBe(http2.constants.NGHTTP2_NO_ERROR);
      expect((await call.trailers)['grpc-status']).toBe('0');
      call.session.close();
    } finally {
      await aging.close();
    }
  });

  it('shutdown ends an open Watch with grpc-status 0 and sends GOAWAY', async () => {
    const closing = await startTestServer({ policies: dir, transport: 'http2' });
    const call = openCall(closing.grpcPort, HEALTH_WATCH);
    call.stream.end(framed(Buffer.alloc(0)));
    expect([...(await call.received(1))[0]]).toEqual(SERVING);
    const closed = closing.close();
    expect((await call.trailers)['grpc-status']).toBe('0');
    expect(await call.goaway).toBe(http2.constants.NGHTTP2_NO_ERROR);
    await closed;
    call.session.close();
  });
});
