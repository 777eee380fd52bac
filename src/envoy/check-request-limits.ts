/**
 * Bounded decoding of CheckRequests. A protobuf message costs its decoder in
 * proportion to its number of fields, not its bytes: 4 million empty
 * `header_map` entries fit in 7.8 MiB and took protobufjs 2.3 s and 490 MB to
 * decode. So before the full decode, one cheap pass over the wire bytes
 * counts what decoding would build (headers, context_extensions, fields,
 * nesting) and stops at the first limit passed, having paid for at most that
 * many fields. Over a limit is a 431 deny; bytes that are not a CheckRequest
 * are a 400 deny. Either way the request reaches the Check handler as a
 * refusal value, so it is answered, logged and counted like any decision,
 * never as a gRPC error Envoy's failure_mode_allow would decide instead.
 */
import type { ReasonCode } from '../reasons.js';
import type { WireCheckRequest } from './wire-types.js';
import { MAX_HEADER_BYTES, MAX_HEADERS } from './check-request.js';

/** Far below grpc-js's 8 MiB default: a CheckRequest is a few KiB, with a buffered body rarely past 64 KiB. */
export const DEFAULT_MAX_REQUEST_BYTES = 1024 * 1024;
/** Operators set context_extensions per route; a few are usual, hundreds would be a mistake. */
export const MAX_CONTEXT_EXTENSIONS = 256;
/**
 * Every field in every nested message, all told. A 1,000-header request is
 * about 3,000 (entry, key, value); decoding 20,000 fields takes protobufjs a
 * few milliseconds.
 */
export const MAX_CHECK_REQUEST_FIELDS = 20_000;
/** Message nesting (metadata Structs are the only deep part); structToJson already reads no deeper than 32. */
export const MAX_CHECK_REQUEST_DEPTH = 64;

export interface CheckRequestLimits {
  maxRequestBytes: number;
  maxHeaders: number;
  maxHeaderBytes: number;
  maxContextExtensions: number;
  maxFields: number;
  maxDepth: number;
}

export const DEFAULT_CHECK_REQUEST_LIMITS: CheckRequestLimits = Object.freeze({
  maxRequestBytes: DEFAULT_MAX_REQUEST_BYTES,
  maxHeaders: MAX_HEADERS,
  maxHeaderBytes: MAX_HEADER_BYTES,
  maxContextExtensions: MAX_CONTEXT_EXTENSIONS,
  maxFields: MAX_CHECK_REQUEST_FIELDS,
  maxDepth: MAX_CHECK_REQUEST_DEPTH,
});

export interface RequestRefusal {
  reason: Extract<ReasonCode, 'malformed_request' | 'request_too_large'>;
  message: string;
}

export type WireScan = { ok: true } | ({ ok: false } & RequestRefusal);

/**
 * The messages the scan descends into, by field number; every other field is
 * counted and skipped. `count` names the limit an occurrence counts against.
 */
export type MessageKind =
  | 'CheckRequest'
  | 'AttributeContext'
  | 'Peer'
  | 'Address'
  | 'Request'
  | 'HttpRequest'
  | 'HeaderMap'
  | 'HeaderEntry'
  | 'Metadata'
  | 'StructEntry'
  | 'Struct'
  | 'FieldEntry'
  | 'Value'
  | 'ListValue';
export interface ChildField {
  kind?: MessageKind;
  count?: 'header' | 'contextExtension';
}
export const SCAN_SCHEMA: Record<MessageKind, Record<number, ChildField>> = {
  CheckRequest: { 1: { kind: 'AttributeContext' } },
  // source, destination, request, context_extensions, metadata_context, tls_session (leaf strings), route_metadata_context
  AttributeContext: {
    1: { kind: 'Peer' },
    2: { kind: 'Peer' },
    4: { kind: 'Request' },
    10: { count: 'contextExtension' },
    11: { kind: 'Metadata' },
    13: { kind: 'Metadata' },
  },
  Peer: { 1: { kind: 'Address' } },
  Address: {},
  Request: { 2: { kind: 'HttpRequest' } },
  // headers (map entries) and header_map
  HttpRequest: { 3: { kind: 'HeaderEntry', count: 'header' }, 13: { kind: 'HeaderMap' } },
  HeaderMap: { 1: { kind: 'HeaderEntry', count: 'header' } },
  HeaderEntry: {},
  // filter_metadata: map<string, Struct>
  Metadata: { 1: { kind: 'StructEntry' } },
  StructEntry: { 2: { kind: 'Struct' } },
  Struct: { 1: { kind: 'FieldEntry' } },
  FieldEntry: { 2: { kind: 'Value' } },
  Value: { 5: { kind: 'Struct' }, 6: { kind: 'ListValue' } },
  ListValue: { 1: { kind: 'Value' } },
};

export class Refused extends Error {
  constructor(readonly refusal: RequestRefusal) {
    super(refusal.message);
  }
}

export interface ScanState {
  readonly bytes: Uint8Array;
  readonly limits: CheckRequestLimits;
  fields: number;
  headers: number;
  headerBytes: number;
  contextExtensions: number;
}

/**
 * One pass over the wire bytes: refuses (with the limit it passed) before
 * counting more than `maxFields` fields, and names malformed bytes. Never throws.
 */
export function scanCheckRequest(
  bytes: Uint8Array,
  limits: CheckRequestLimits = DEFAULT_CHECK_REQUEST_LIMITS,
): WireScan {
  if (bytes.length > limits.maxRequestBytes) {
    return {
      ok: false,
      reason: 'request_too_large',
      message: `CheckRequest is ${bytes.length} bytes, more than the limit of ${limits.maxRequestBytes} (max-request-bytes)`,
    };
  }
  const state: ScanState = { bytes, limits, fields: 0, headers: 0, headerBytes: 0, contextExtensions: 0 };
  try {
    scanMessage(state, 'CheckRequest', 0, bytes.length, 0);
    return { ok: true };
  } catch (err) {
    if (err instanceof Refused) return { ok: false, ...err.refusal };
    return { ok: false, reason: 'malformed_request', message: 'CheckRequest is not valid protobuf' };
  }
}

export function tooLarge(message: string): never {
  throw new Refused({ reason: 'request_too_large', message });
}

export function malformed(what: string): never {
  throw new Refused({ reason: 'malformed_request', message: `CheckRequest is not valid protobuf: ${what}` });
}

function scanMessage(state: ScanState, kind: MessageKind, start: number, end: number, depth: number): void {
  const { bytes, limits } = state;
  if (depth > limits.maxDepth) tooLarge(`CheckRequest nests messages deeper than ${limits.maxDepth}`);
  const children = SCAN_SCHEMA[kind];
  let pos = start;
  while (pos < end) {
    if (++state.fields > limits.maxFields) tooLarge(`CheckRequest has more than ${limits.maxFields} fields`);
    const [tag, afterTag] = readVarint(bytes, pos, end);
    pos = afterTag;
    const field = Math.floor(tag / 8);
    const wireType = tag % 8;
    if (field === 0) malformed('field number 0');
    const child = children[field];
    switch (wireType) {
      case 0:
        if (child?.kind) malformed(`field ${field} of ${kind} is not a varint`);
        pos = readVarint(bytes, pos, end)[1];
        break;
      case 1:
        pos += 8;
        break;
      case 5:
        pos += 4;
        break;
      case 2: {
        const [length, afterLength] = readVarint(bytes, pos, end);
        const bodyEnd = afterLength + length;
        if (bodyEnd > end) malformed('a length runs past the end of its message');
        if (child?.count) countEntry(state, child.count, afterLength, bodyEnd, kind);
        if (child?.kind) scanMessage(state, child.kind, afterLength, bodyEnd, depth + 1);
        pos = bodyEnd;
        break;
      }
      default:
        // 3 and 4 are proto2 groups, which no Envoy message has; 6 and 7 do not exist.
        malformed(`wire type ${wireType}`);
    }
    if (pos > end) malformed('a field runs past the end of its message');
  }
}

/** Counts one header or context_extensions entry (empty ones included) and its key and value bytes. */
export function countEntry(
  state: ScanState,
  what: 'header' | 'contextExtension',
  start: number,
  end: number,
  parent: MessageKind,
): void {
  const { limits } = state;
  if (what === 'contextExtension') {
    if (++state.contextExtensions > limits.maxContextExtensions)
      tooLarge(`request has more than ${limits.maxContextExtensions} context_extensions`);
    return;
  }
  if (++state.headers > limits.maxHeaders) tooLarge(`request has more than ${limits.maxHeaders} headers`);
  // An entry's string fields (key, value, raw_value) are its header bytes; tags and lengths are not.
  let pos = start;
  while (pos < end) {
    const [tag, afterTag] = readVarint(state.bytes, pos, end);
    if (tag % 8 !== 2) malformed(`a header entry of ${parent} holds a field that is not a string`);
    const [length, afterLength] = readVarint(state.bytes, afterTag, end);
    state.headerBytes += length;
    pos = afterLength + length;
  }
  if (pos > end) malformed('a header entry runs past its end');
  if (state.headerBytes > limits.maxHeaderBytes) tooLarge(`request headers exceed ${limits.maxHeaderBytes} bytes`);
}

/** A varint of at most 10 bytes → [value, next position]; values past 2^53 only ever matter as "too long". */
export function readVarint(bytes: Uint8Array, pos: number, end: number): [number, number] {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 10; i++) {
    if (pos >= end) malformed('truncated varint');
    const b = bytes[pos++];
    value += (b & 0x7f) * scale;
    if (b < 0x80) return [value, pos];
    scale *= 128;
  }
  return malformed('varint longer than 10 bytes');
}

const REFUSAL = Symbol('check request refusal');

/** What the gRPC deserializer hands the Check handler instead of a request it refused. */
export type RefusedCheckRequest = WireCheckRequest & { [REFUSAL]: RequestRefusal };

export function refusalOf(request: WireCheckRequest | null | undefined): RequestRefusal | undefined {
  return (request as Partial<RefusedCheckRequest> | null | undefined)?.[REFUSAL];
}

export function refusedCheckRequest(refusal: RequestRefusal): RefusedCheckRequest {
  return { [REFUSAL]: refusal };
}

/**
 * Wraps proto-loader's deserializer for grpc-js: scan, then decode, and turn
 * any refusal or decoder exception into a refusal value (a throw here would be
 * answered by grpc-js as INTERNAL, which is not a decision).
 */
export function boundedCheckRequestDeserializer(
  decode: (bytes: Buffer) => WireCheckRequest,
  limits: CheckRequestLimits,
): (bytes: Buffer) => WireCheckRequest {
  return (bytes) => {
    const scan = scanCheckRequest(bytes, limits);
    if (!scan.ok) return refusedCheckRequest({ reason: scan.reason, message: scan.message });
    try {
      return decode(bytes);
    } catch {
      return refusedCheckRequest({ reason: 'malformed_request', message: 'CheckRequest is not valid protobuf' });
    }
  };
}
