/**
 * Hand-built protobuf wire bytes for CheckRequests no well-behaved encoder
 * would produce (millions of empty entries, truncations), and raw clients that
 * send them: a grpc-js client with an identity serializer, and a bare HTTP/2
 * socket for frames grpc-js would never write.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import net from 'node:net';
import path from 'node:path';
import { PROTO_DIR, PROTO_LOADER_OPTIONS } from '../../src/envoy/protos.js';
import type { WireCheckRequest, WireCheckResponse } from '../../src/envoy/wire-types.js';

export const CHECK_PATH = '/envoy.service.auth.v3.Authorization/Check';

export function varint(n: number): Buffer {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return Buffer.from(out);
}

/** A length-delimited field (wire type 2). */
export function lenField(field: number, body: Uint8Array | string): Buffer {
  const bytes = typeof body === 'string' ? Buffer.from(body) : Buffer.from(body);
  return Buffer.concat([varint(field * 8 + 2), varint(bytes.length), bytes]);
}

/** `count` copies of an empty length-delimited field: 2 bytes each for fields 1–15. */
export function emptyFields(field: number, count: number): Buffer {
  const one = lenField(field, '');
  const out = Buffer.alloc(one.length * count);
  out.fill(one);
  return out;
}

/** GET /public/x on frontend: a request every version of the example mesh allows. */
export function httpRequestFields(): Buffer {
  return Buffer.concat([lenField(2, 'GET'), lenField(4, '/public/x'), lenField(5, 'frontend')]);
}

/** CheckRequest{attributes{request{http{<httpFields>}}, <attributeFields>}}. */
export function checkRequestBytes(opts: { httpFields?: Buffer; attributeFields?: Buffer } = {}): Buffer {
  const http = lenField(2, opts.httpFields ?? httpRequestFields());
  const attributes = Buffer.concat([lenField(4, http), opts.attributeFields ?? Buffer.alloc(0)]);
  return lenField(1, attributes);
}

/** 4 million empty header_map entries (HttpRequest.header_map = 13, HeaderMap.headers = 1): 7.6 MiB. */
export function emptyHeaderMapRequest(entries: number): Buffer {
  return checkRequestBytes({ httpFields: Buffer.concat([httpRequestFields(), lenField(13, emptyFields(1, entries))]) });
}

/** Empty context_extensions map entries (AttributeContext field 10). */
export function emptyContextExtensionsRequest(entries: number): Buffer {
  return checkRequestBytes({ attributeFields: emptyFields(10, entries) });
}

function authorizationClientCtor(): grpc.ServiceClientConstructor {
  const def = protoLoader.loadSync(path.join(PROTO_DIR, 'envoy/service/auth/v3/external_auth.proto'), {
    ...PROTO_LOADER_OPTIONS,
    enums: Number,
  });
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    envoy: { service: { auth: { v3: { Authorization: grpc.ServiceClientConstructor } } } };
  };
  return pkg.envoy.service.auth.v3.Authorization;
}

export interface RawCheckClient {
  /** Sends the bytes as the CheckRequest message, as they are. */
  check(bytes: Buffer, deadlineMs?: number): Promise<WireCheckResponse>;
  /** Encodes a request the way Envoy would. */
  encode(req: WireCheckRequest): Buffer;
  close(): void;
}

export function connectRawCheck(port: number): RawCheckClient {
  const ctor = authorizationClientCtor();
  const method = ctor.service.Check;
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  return {
    check(bytes, deadlineMs = 30_000) {
      return new Promise((resolve, reject) => {
        client.makeUnaryRequest(
          CHECK_PATH,
          (b: Buffer) => b,
          (b: Buffer) => method.responseDeserialize(b) as WireCheckResponse,
          bytes,
          { deadline: Date.now() + deadlineMs },
          (err, res) => (err ? reject(err) : resolve(res!)),
        );
      });
    },
    encode: (req) => method.requestSerialize(req),
    close: () => client.close(),
  };
}

/** HTTP/2 frame: 9-byte header + payload. */
export function h2Frame(type: number, flags: number, streamId: number, payload: Uint8Array = Buffer.alloc(0)): Buffer {
  const out = Buffer.alloc(9 + payload.length);
  out.writeUIntBE(payload.length, 0, 3);
  out[3] = type;
  out[4] = flags;
  out.writeUInt32BE(streamId, 5);
  Buffer.from(payload).copy(out, 9);
  return out;
}

export const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
export const H2 = {
  DATA: 0,
  HEADERS: 1,
  RST_STREAM: 3,
  SETTINGS: 4,
  GOAWAY: 7,
  END_STREAM: 1,
  END_HEADERS: 4,
  ACK: 1,
} as const;

/** An HPACK string literal without Huffman coding. */
function hpackString(s: string): Buffer {
  const bytes = Buffer.from(s);
  return Buffer.concat([hpackInt(bytes.length, 7, 0), bytes]);
}

function hpackInt(n: number, prefixBits: number, firstByteFlags: number): Buffer {
  const max = (1 << prefixBits) - 1;
  if (n < max) return Buffer.from([firstByteFlags | n]);
  const out = [firstByteFlags | max];
  n -= max;
  while (n >= 128) {
    out.push((n % 128) | 128);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}

/** A literal header added to the HPACK dynamic table (new name). */
export function hpackLiteralIndexed(name: string, value: string): Buffer {
  return Buffer.concat([Buffer.from([0x40]), hpackString(name), hpackString(value)]);
}

/** A reference to an HPACK table entry (static 1–61, dynamic from 62, newest first). */
export function hpackIndexed(index: number): Buffer {
  return hpackInt(index, 7, 0x80);
}

export interface RawH2Counts {
  resets: number;
  headers: number;
  goaway: boolean;
  closed: boolean;
}

/**
 * A bare HTTP/2 connection: sends what it is given, ACKs the server's SETTINGS
 * (when `ackSettings`), and counts the frames it gets back.
 */
export class RawH2Connection {
  readonly socket: net.Socket;
  readonly counts: RawH2Counts = { resets: 0, headers: 0, goaway: false, closed: false };
  private buffered = Buffer.alloc(0);
  readonly settingsReceived: Promise<void>;

  constructor(port: number, ackSettings = true) {
    this.socket = net.connect(port, '127.0.0.1');
    this.socket.on('error', () => undefined);
    let gotSettings: () => void = () => undefined;
    this.settingsReceived = new Promise((resolve) => (gotSettings = resolve));
    this.socket.on('close', () => {
      this.counts.closed = true;
      gotSettings();
    });
    this.socket.on('data', (chunk: Buffer) => {
      this.buffered = Buffer.concat([this.buffered, chunk]);
      while (this.buffered.length >= 9) {
        const length = this.buffered.readUIntBE(0, 3);
        if (this.buffered.length < 9 + length) break;
        const type = this.buffered[3];
        const flags = this.buffered[4];
        if (type === H2.RST_STREAM) this.counts.resets++;
        if (type === H2.HEADERS) this.counts.headers++;
        if (type === H2.GOAWAY) this.counts.goaway = true;
        if (type === H2.SETTINGS && !(flags & H2.ACK)) {
          if (ackSettings) this.write(h2Frame(H2.SETTINGS, H2.ACK, 0));
          gotSettings();
        }
        this.buffered = this.buffered.subarray(9 + length);
      }
    });
    this.write(Buffer.concat([H2_PREFACE, h2Frame(H2.SETTINGS, 0, 0)]));
  }

  write(bytes: Buffer): boolean {
    return !this.socket.destroyed && this.socket.write(bytes);
  }

  /** Resolves when everything written so far has left (or the socket closed). */
  drain(): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.destroyed || this.socket.writableLength === 0) return resolve();
      this.socket.once('drain', () => resolve());
      this.socket.once('close', () => resolve());
    });
  }

  close(): void {
    this.socket.destroy();
  }
}
