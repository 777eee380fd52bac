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
