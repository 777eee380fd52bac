/**
 * The gRPC-over-HTTP/2 wire rules the node:http2 transport needs, as pure
 * functions (https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md):
 * the 5-byte message prefix, `grpc-timeout`, `grpc-message` percent-encoding
 * and the status codes we answer with.
 */

/** gRPC status codes used by the transport (grpc-js's `status` enum has the same numbers). */
export const GrpcStatus = {
  OK: 0,
  DEADLINE_EXCEEDED: 4,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;
export type GrpcStatusCode = (typeof GrpcStatus)[keyof typeof GrpcStatus];

/** Compressed flag (1 byte) + message length (4 bytes, big-endian). */
export const MESSAGE_PREFIX_BYTES = 5;

/** One framed message: the prefix then the bytes. */
export function frameMessage(message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(MESSAGE_PREFIX_BYTES + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  out.set(message, MESSAGE_PREFIX_BYTES);
  return out;
}

const TIMEOUT_UNITS_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 1e-3, n: 1e-6 };
/** "TimeoutValue → {positive integer as ASCII string of at most 8 digits}" then one unit letter. */
const TIMEOUT_PATTERN = /^(\d{1,8})([HMSmun])$/;

/**
 * `grpc-timeout` → milliseconds from now; undefined when absent; `null` when
 * present but not the grammar (the call is then refused, as grpc-js does).
 */
export function parseGrpcTimeout(value: string | string[] | undefined): number | undefined | null {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') return null;
  const m = TIMEOUT_PATTERN.exec(value);
  if (!m) return null;
  return Number(m[1]) * TIMEOUT_UNITS_MS[m[2]];
}

/**
 * `grpc-message` is percent-encoded UTF-8: every byte outside printable ASCII
 * (0x20–0x7E), and `%` itself, becomes %XX.
 */
export function encodeGrpcMessage(message: string): string {
  let plain = true;
  for (let i = 0; i < message.length; i++) {
    const c = message.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x25) {
      plain = false;
      break;
    }
  }
  if (plain) return message;
  let out = '';
  for (const byte of Buffer.from(message, 'utf8')) {
    out +=
      byte < 0x20 || byte > 0x7e || byte === 0x25
        ? `%${byte.toString(16).toUpperCase().padStart(2, '0')}`
        : String.fromCharCode(byte);
  }
  return out;
}

/** `application/grpc` and its `+proto` / `;params` forms (the spec's Content-Type rule). */
export function isGrpcContentType(value: string | string[] | undefined): boolean {
  if (typeof value !== 'string' || !value.startsWith('application/grpc')) return false;
  const rest = value.charCodeAt(16);
  return value.length === 16 || rest === 0x2b /* + */ || rest === 0x3b /* ; */;
}

/** What a message reader refuses: the caller answers each with a gRPC status (or, for an oversize Check, a 431 deny). */
export type FramingError =
  | { kind: 'oversize'; length: number }
  | { kind: 'compressed' }
  | { kind: 'bad_flag'; flag: number }
  /** A second message's prefix on a unary call (more than `maxMessages`). */
  | { kind: 'extra_message' };

/**
 * Splits a stream's DATA into length-prefixed messages, as they complete.
 * The prefix is read first, so a message over `maxBytes` is refused as soon as
 * its 5 bytes arrive and its body is never held. A message that arrives whole
 * in one chunk (what Envoy and grpc-js send for a small message) is handed on
 * as a view of that chunk, without a copy.
 */
export class GrpcMessageReader {
  /** Only for a prefix split over DATA frames (rare), so not allocated per stream. */
  private prefix: Buffer | undefined;
  private prefixFilled = 0;
  private body: Buffer | undefined;
  private bodyFilled = 0;
  private messages = 0;

  constructor(
    private readonly maxBytes: number,
    private readonly onMessage: (message: Buffer) => void,
    /** 1 for a unary or server-streaming call: a second prefix is refused as soon as it starts. */
    private readonly maxMessages = Number.POSITIVE_INFINITY,
  ) {}

  /** True between a message's first byte and its last: the stream must not end here. */
  get partial(): boolean {
    return this.prefixFilled > 0 || this.body !== undefined;
  }

  /** Reads one chunk; stops at the first framing error (the stream is then answered, not read further). */
  push(chunk: Buffer): FramingError | undefined {
    let at = 0;
    const end = chunk.length;
    while (at < end) {
      if (this.body === undefined) {
        // A unary call's second message is refused at its first byte.
        if (this.prefixFilled === 0 && this.messages >= this.maxMessages) return { kind: 'extra_message' };
        let length: number;
        let flag: number;
        if (this.prefixFilled === 0 && end - at >= MESSAGE_PREFIX_BYTES) {
          flag = chunk[at];
          length = chunk.readUInt32BE(at + 1);
          at += MESSAGE_PREFIX_BYTES;
        } else {
          // The prefix is split over DATA frames.
          const take = Math.min(MESSAGE_PREFIX_BYTES - this.prefixFilled, end - at);
          this.prefix ??= Buffer.allocUnsafe(MESSAGE_PREFIX_BYTES);
          chunk.copy(this.prefix, this.prefixFilled, at, at + take);
          this.prefixFilled += take;
          at += take;
          if (this.prefixFilled < MESSAGE_PREFIX_BYTES) return undefined;
          this.prefixFilled = 0;
          flag = this.prefix[0];
          length = this.prefix.readUInt32BE(1);
        }
        this.messages++;
        if (flag === 1) return { kind: 'compressed' };
        if (flag !== 0) return { kind: 'bad_flag', flag };
        if (length > this.maxBytes) return { kind: 'oversize', length };
        if (end - at >= length) {
          const message = chunk.subarray(at, at + length);
          at += length;
          this.onMessage(message);
          continue;
        }
        this.body = Buffer.allocUnsafe(length);
        this.bodyFilled = 0;
      }
      const take = Math.min(this.body.length - this.bodyFilled, end - at);
      chunk.copy(this.body, this.bodyFilled, at, at + take);
      this.bodyFilled += take;
      at += take;
      if (this.bodyFilled === this.body.length) {
        const message = this.body;
        this.body = undefined;
        this.onMessage(message);
      }
    }
    return undefined;
  }
}
