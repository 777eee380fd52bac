/**
 * CheckRequest bytes → the `WireCheckRequest` fields the pipeline reads, in
 * one pass that enforces the input limits while it reads (instead of the
 * limit scan, then protobufjs building every field as objects, then
 * proto-loader's toObject copying them again).
 *
 * Field numbers are those of Envoy's v3 API reference
 * (https://www.envoyproxy.io/docs/envoy/latest/api-v3/service/auth/v3/attribute_context.proto,
 * .../config/core/v3/address.proto, .../config/core/v3/base.proto) and
 * google/protobuf/struct.proto and timestamp.proto.
 *
 * The answer is exactly what `boundedCheckRequestDeserializer` over
 * protobufjs gives (test/property/check-request-decoder.property.test.ts):
 * - the limit scan's walk is reproduced step for step (the same fields are
 *   counted in the same order, with check-request-limits.ts's helpers), so
 *   the same refusal comes back with the same message;
 * - for bytes a conforming encoder never writes (a known field with the
 *   wrong wire type, groups, a map entry without its message value, a
 *   sub-message whose fields overrun it), protobufjs has lenient readings of
 *   its own; rather than imitate them, such a request is handed to
 *   protobufjs after the walk passed its limits, as before this decoder.
 * Values are read the way protobufjs reads them: strings as UTF-8 (Node's
 * decoder), a repeated singular message replaces the earlier one, a map key
 * "__proto__" is an own property, int64 as decimal strings, enums by name.
 */
import { CREDENTIAL_HEADERS as CREDENTIAL_HEADER_NAMES } from './credential-headers.js';
import { authorizationService } from './protos.js';
import {
  countEntry,
  DEFAULT_CHECK_REQUEST_LIMITS,
  malformed,
  readVarint,
  refusedCheckRequest,
  Refused,
  SCAN_SCHEMA,
  tooLarge,
  type CheckRequestLimits,
  type ChildField,
  type MessageKind,
  type ScanState,
} from './check-request-limits.js';
import type {
  WireAddress,
  WireAttributeContext,
  WireCheckRequest,
  WireHeaderValue,
  WireHttpRequest,
  WirePeer,
  WireSocketAddress,
  WireStruct,
  WireStructValue,
  WireTimestamp,
} from './wire-types.js';

interface DecodeState extends ScanState {
  bytes: Buffer;
  /** Set when the bytes need protobufjs's own reading (see the module comment). */
  irregular: boolean;
  /** Where the last varint read ended (no tuple allocated per field). */
  next: number;
}

/** readVarint (check-request-limits.ts) without its tuple: the same values and the same refusals. */
function varint(s: DecodeState, pos: number, end: number): number {
  const bytes = s.bytes;
  if (pos < end && bytes[pos] < 0x80) {
    s.next = pos + 1;
    return bytes[pos];
  }
  // Two bytes: the length of most sub-messages (128 bytes to 16 KiB).
  if (pos + 1 < end && bytes[pos + 1] < 0x80) {
    s.next = pos + 2;
    return (bytes[pos] & 0x7f) + bytes[pos + 1] * 128;
  }
  const [value, next] = readVarint(bytes, pos, end);
  s.next = next;
  return value;
}

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LEN = 2;
const WIRE_FIXED32 = 5;

/** One field of a message walked like the limit scan walks it. */
interface Field {
  number: number;
  wireType: number;
  /** The value's bytes: the varint, the fixed bytes, or a length-delimited body. */
  start: number;
  end: number;
}

/**
 * Reads the next field of a scanned message, with the limit scan's checks in
 * its order (scanMessage in check-request-limits.ts). Returns false at the end.
 */
function nextField(
  s: DecodeState,
  kind: MessageKind,
  children: Record<number, ChildField>,
  cursor: { pos: number; end: number },
  f: Field,
): boolean {
  const limits = s.limits;
  const end = cursor.end;
  let pos = cursor.pos;
  if (pos >= end) return false;
  if (++s.fields > limits.maxFields) tooLarge(`CheckRequest has more than ${limits.maxFields} fields`);
  const tag = varint(s, pos, end);
  const afterTag = s.next;
  if (!regular32(tag, afterTag - pos)) s.irregular = true;
  pos = afterTag;
  const number = Math.floor(tag / 8);
  const wireType = tag % 8;
  if (number === 0) malformed('field number 0');
  const child = children[number];
  let start = pos;
  switch (wireType) {
    case WIRE_VARINT:
      if (child?.kind) malformed(`field ${number} of ${kind} is not a varint`);
      varint(s, pos, end);
      pos = s.next;
      break;
    case WIRE_FIXED64:
      pos += 8;
      break;
    case WIRE_FIXED32:
      pos += 4;
      break;
    case WIRE_LEN: {
      const length = varint(s, pos, end);
      const afterLength = s.next;
      const bodyEnd = afterLength + length;
      if (bodyEnd > end) malformed('a length runs past the end of its message');
      if (!regular32(length, afterLength - pos)) s.irregular = true;
      if (child?.count) countEntry(s, child.count, afterLength, bodyEnd, kind);
      start = afterLength;
      pos = bodyEnd;
      break;
    }
    default:
      malformed(`wire type ${wireType}`);
  }
  if (pos > end) malformed('a field runs past the end of its message');
  cursor.pos = pos;
  f.number = number;
  f.wireType = wireType;
  f.start = start;
  f.end = pos;
  return true;
}

function enter(s: DecodeState, depth: number): void {
  if (depth > s.limits.maxDepth) tooLarge(`CheckRequest nests messages deeper than ${s.limits.maxDepth}`);
}

function newField(): Field {
  return { number: 0, wireType: 0, start: 0, end: 0 };
}

/**
 * Short ASCII strings read lately (header names, the values that repeat from
 * request to request: methods, hosts, principals, user agents; never a
 * credential header's value, a path, a query or a body), in slots
 * by a hash of their bytes. Returning the held string instead of decoding the
 * bytes again saves a call into Node's UTF-8 decoder per string, the largest
 * part of decoding a request with a dozen headers. A slot holds the last
 * string hashed to it, compared byte for byte before use, so an answer is
 * always the bytes' own text; bounded: INTERN_SLOTS strings of at most
 * MAX_INTERNED_BYTES.
 */
const INTERN_SLOTS = 1024;
/**
 * Headers whose values are read past the table: the credential headers (the
 * list the decision log redacts, credential-headers.ts) and the upstream JWT
 * payload header's usual name. Paths, queries and bodies never use it.
 */
const CREDENTIAL_HEADERS: ReadonlySet<string> = new Set([...CREDENTIAL_HEADER_NAMES, 'x-jwt-payload']);
const MAX_INTERNED_BYTES = 64;
const interned: string[] = new Array<string>(INTERN_SLOTS).fill('');

/** The UTF-8 text of bytes[start, end), as `toString('utf8', start, end)` gives it. */
function utf8(bytes: Buffer, start: number, end: number): string {
  const n = end - start;
  if (n <= 0 || n > MAX_INTERNED_BYTES) return bytes.toString('utf8', start, end);
  let h = 0x811c9dc5 ^ n;
  for (let i = start; i < end; i++) {
    const b = bytes[i];
    // Not ASCII: Node's decoder (multi-byte sequences, invalid bytes as U+FFFD).
    if (b >= 0x80) return bytes.toString('utf8', start, end);
    h = Math.imul(h ^ b, 0x01000193);
  }
  const slot = (h >>> 0) % INTERN_SLOTS;
  const held = interned[slot];
  if (held.length === n) {
    let i = 0;
    while (i < n && held.charCodeAt(i) === bytes[start + i]) i++;
    if (i === n) return held;
  }
  const text = bytes.toString('latin1', start, end);
  interned[slot] = text;
  return text;
}

/** A length-delimited value, or undefined (and irregular) for another wire type. */
function text(s: DecodeState, f: Field): string | undefined {
  if (f.wireType !== WIRE_LEN) {
    s.irregular = true;
    return undefined;
  }
  return s.bytes.toString('utf8', f.start, f.end);
}

/** `text` for a field that repeats across requests and never carries a secret (method, host, scheme, protocol, principals). */
function commonText(s: DecodeState, f: Field): string | undefined {
  if (f.wireType !== WIRE_LEN) {
    s.irregular = true;
    return undefined;
  }
  return utf8(s.bytes, f.start, f.end);
}

/** A nested message that must be length-delimited (or the request is irregular). */
function isLen(s: DecodeState, f: Field): boolean {
  if (f.wireType === WIRE_LEN) return true;
  s.irregular = true;
  return false;
}

/** A map entry; "__proto__" becomes an own property (as protobufjs's makeProp does), never the object's prototype. */
function setEntry<T>(map: Record<string, T>, key: string, value: T): void {
  if (key === '__proto__')
    Object.defineProperty(map, key, { value, writable: true, enumerable: true, configurable: true });
  else map[key] = value;
}

// ---- scanned messages (the limit scan descends into these) ----

function checkRequest(s: DecodeState, start: number, end: number): WireCheckRequest {
  enter(s, 0);
  const out: WireCheckRequest = {};
  const cursor = { pos: start, end };
  const f = newField();
  while (nextField(s, 'CheckRequest', SCAN_SCHEMA.CheckRequest, cursor, f)) {
    if (f.number === 1 && isLen(s, f)) out.attributes = attributeContext(s, f.start, f.end, 1);
  }
  return out;
}

function attributeContext(s: DecodeState, start: number, end: number, depth: number): WireAttributeContext {
  enter(s, depth);
  const out: WireAttributeContext = {};
  const cursor = { pos: start, end };
  const f = newField();
  let extensions: Record<string, string> | undefined;
  while (nextField(s, 'AttributeContext', SCAN_SCHEMA.AttributeContext, cursor, f)) {
    switch (f.number) {
      case 1:
        if (isLen(s, f)) out.source = peer(s, f.start, f.end, depth + 1);
        break;
      case 2:
        if (isLen(s, f)) out.destination = peer(s, f.start, f.end, depth + 1);
        break;
      case 4:
        if (isLen(s, f)) out.request = request(s, f.start, f.end, depth + 1);
        break;
      case 10:
        if (isLen(s, f)) {
          const entry = stringEntry(s, f.start, f.end);
          if (entry) setEntry((extensions ??= {}), entry[0], entry[1]);
        }
        break;
      case 11:
        if (isLen(s, f)) out.metadata_context = metadata(s, f.start, f.end, depth + 1);
        break;
      case 12:
        if (isLen(s, f)) out.tls_session = tlsSession(s, f.start, f.end);
        break;
      case 13:
        if (isLen(s, f)) out.route_metadata_context = metadata(s, f.start, f.end, depth + 1);
        break;
    }
  }
  if (extensions && hasKeys(extensions)) out.context_extensions = extensions;
  return out;
}

function peer(s: DecodeState, start: number, end: number, depth: number): WirePeer {
  enter(s, depth);
  const out: WirePeer = {};
  const cursor = { pos: start, end };
  const f = newField();
  while (nextField(s, 'Peer', SCAN_SCHEMA.Peer, cursor, f)) {
    switch (f.number) {
      case 1:
        if (isLen(s, f)) out.address = address(s, f.start, f.end, depth + 1);
        break;
      case 2:
        out.service = commonText(s, f);
        break;
      case 3: // labels: not read by the pipeline
        if (isLen(s, f)) checkOpaque(s, f.start, f.end, STRING_MAP_ENTRY);
        break;
      case 4:
        out.principal = commonText(s, f);
        break;
      case 5: // certificate: not read by the pipeline
        isLen(s, f);
        break;
    }
  }
  return out;
}

function address(s: DecodeState, start: number, end: number, depth: number): WireAddress {
  enter(s, depth);
  const out: WireAddress = {};
  const cursor = { pos: start, end };
  const f = newField();
  while (nextField(s, 'Address', SCAN_SCHEMA.Address, cursor, f)) {
    switch (f.number) {
      case 1:
        if (isLen(s, f)) out.socket_address = socketAddress(s, f.start, f.end);
        break;
      case 2: // pipe
        if (isLen(s, f)) checkOpaque(s, f.start, f.end, PIPE);
        break;
      case 3: // envoy_internal_address
        if (isLen(s, f)) checkOpaque(s, f.start, f.end, ENVOY_INTERNAL_ADDRESS);
        break;
    }
  }
  return out;
}

function request(
  s: DecodeState,
  start: number,
  end: number,
  depth: number,
): NonNullable<WireAttributeContext['request']> {
  enter(s, depth);
  const out: NonNullable<WireAttributeContext['request']> = {};
  const cursor = { pos: start, end };
  const f = newField();
  while (nextField(s, 'Request', SCAN_SCHEMA.Request, cursor, f)) {
    if (f.number === 1 && isLen(s, f)) out.time = timestamp(s, f.start, f.end);
    else if (f.number === 2 && isLen(s, f)) out.http = httpRequest(s, f.start, f.end, depth + 1);
  }
  return out;
}

function httpRequest(s: DecodeState, start: number, end: number, depth: number): WireHttpRequest {
  enter(s, depth);
  const out: WireHttpRequest = {};
  const cursor = { pos: start, end };
  const f = newField();
  let headers: Record<string, string> | undefined;
  while (nextField(s, 'HttpRequest', SCAN_SCHEMA.HttpRequest, cursor, f)) {
    switch (f.number) {
      case 1:
        out.id = text(s, f);
        break;
      case 2:
        out.method = commonText(s, f);
        break;
      case 3:
        if (isLen(s, f)) {
          const entry = headerEntry(s, f.start, f.end, depth + 1);
          setEntry((headers ??= {}), entry.key ?? '', entry.value ?? '');
        }
        break;
      case 4:
        out.path = text(s, f);
        break;
      case 5:
        out.host = commonText(s, f);
        break;
      case 6:
        out.scheme = commonText(s, f);
        break;
      case 7:
        out.query = text(s, f);
        break;
      case 8: // fragment: Envoy never sends it
        isLen(s, f);
        break;
      case 9: // size (int64): the body's whole length, to tell a cut body
        if (f.wireType !== WIRE_VARINT) s.irregular = true;
        else out.size = int64String(s.bytes, f.start, f.end);
        break;
      case 10:
        out.protocol = commonText(s, f);
        break;
      case 11:
        out.body = text(s, f);
        break;
      case 12:
        if (isLen(s, f)) out.raw_body = s.bytes.subarray(f.start, f.end);
        break;
      case 13:
        if (isLen(s, f)) out.header_map = headerMap(s, f.start, f.end, depth + 1);
        break;
    }
  }
  if (headers && hasKeys(headers)) out.headers = headers;
  return out;
}

function headerMap(s: DecodeState, start: number, end: number, depth: number): { headers?: WireHeaderValue[] } {
  enter(s, depth);
  const list: WireHeaderValue[] = [];
  const cursor = { pos: start, end };
  const f = newField();
  while (nextField(s, 'HeaderMap', SCAN_SCHEMA.HeaderMap, cursor, f)) {
    if (f.number === 1 && isLen(s, f)) list.push(headerEntry(s, f.start, f.end, depth + 1));
  }
  return list.length > 0 ? { headers: list } : {};
}

/** A `headers` map entry (key 1, value 2) or a HeaderValue (key 1, value 2, raw_value 3): both scanned as HeaderEntry. */
function headerEntry(s: DecodeState, start: number, end: number, depth: number): WireHeaderValue {
  enter(s, depth);
  const out: WireHeaderValue = {};
  const cursor = { pos: start, end };
  const f = newField();
  while (nextField(s, 'HeaderEntry', SCAN_SCHEMA.HeaderEntry, cursor, f)) {
    // countEntry already refused any field that is not length-delimited.
    if (f.number === 1) out.key = utf8(s.bytes, f.start, f.end);
    else if (f.number === 2)
      // A credential's value never enters the table (nor stays in memory through it); nor one whose name came after it.
      out.value =
        out.key === undefined || CREDENTIAL_HEADERS.has(out.key.toLowerCase())
          ? s.bytes.toString('utf8', f.start, f.end)
          : utf8(s.bytes, f.start, f.end);
    else if (f.number === 3) out.raw_value = s.bytes.subarray(f.start, f.end);
  }
  return out;
}

function metadata(
  s: DecodeState,
  start: number,
  end: number,
  depth: number,
): { filter_metadata?: Record<string, WireStruct> } {
  enter(s, depth);
  const cursor = { pos: start, end };
  const f = newField();
  let map: Record<string, WireStruct> | undefined;
  while (nextField(s, 'Metadata', SCAN_SCHEMA.Metadata, cursor, f)) {
    if (f.number === 1) {
      if (!isLen(s, f)) continue;
      const [key, value] = structEntry(s, f.start, f.end, depth + 1);
      if (value === undefined) s.irregular = true;
      else setEntry((map ??= {}), key, value);
    } else if (f.number === 2 && isLen(s, f)) {
      checkOpaque(s, f.start, f.end, ANY_MAP_ENTRY); // typed_filter_metadata: not read
    }
  }
  return map && hasKeys(map) ? { filter_metadata: map } : {};
}

/** filter_metadata entry: key 1, Struct 2. */
function structEntry(s: DecodeState, start: number, end: number, depth: number): [string, WireStruct | undefined] {
  enter(s, depth);
  const cursor = { pos: start, end };
  const f = newField();
  let key = '';
  let value: WireStruct | undefined;
  while (nextField(s, 'StructEntry', SCAN_SCHEMA.StructEntry, cursor, f)) {
    if (f.number === 1) key = text(s, f) ?? '';
    else if (f.number === 2 && isLen(s, f)) value = struct(s, f.start, f.end, depth + 1);
  }
  return [key, value];
}

function struct(s: DecodeState, start: number, end: number, depth: number): WireStruct {
  enter(s, depth);
  const cursor = { pos: start, end };
  const f = newField();
  let fields: Record<string, WireStructValue> | undefined;
  while (nextField(s, 'Struct', SCAN_SCHEMA.Struct, cursor, f)) {
    if (f.number !== 1 || !isLen(s, f)) continue;
    const [key, value] = fieldEntry(s, f.start, f.end, depth + 1);
    if (value === undefined) s.irregular = true;
    else setEntry((fields ??= {}), key, value);
  }
  return fields && hasKeys(fields) ? { fields } : {};
}

/** Struct.fields entry: key 1, Value 2. */
function fieldEntry(s: DecodeState, start: number, end: number, depth: number): [string, WireStructValue | undefined] {
  enter(s, depth);
  const cursor = { pos: start, end };
  const f = newField();
  let key = '';
  let value: WireStructValue | undefined;
  while (nextField(s, 'FieldEntry', SCAN_SCHEMA.FieldEntry, cursor, f)) {
    if (f.number === 1) key = text(s, f) ?? '';
    else if (f.number === 2 && isLen(s, f)) value = structValue(s, f.start, f.end, depth + 1);
  }
  return [key, value];
}

function structValue(s: DecodeState, start: number, end: number, depth: number): WireStructValue {
  enter(s, depth);
  const out: WireStructValue = {};
  const cursor = { pos: start, end };
  const f = newField();
  while (nextField(s, 'Value', SCAN_SCHEMA.Value, cursor, f)) {
    switch (f.number) {
      case 1: {
        if (f.wireType !== WIRE_VARINT || !regular32(0, f.end - f.start)) s.irregular = true;
        else {
          const n = varint32(s.bytes, f.start, f.end) | 0;
          out.nullValue = n === 0 ? 'NULL_VALUE' : n;
        }
        break;
      }
      case 2:
        if (f.wireType !== WIRE_FIXED64) s.irregular = true;
        else out.numberValue = s.bytes.readDoubleLE(f.start);
        break;
      case 3:
        out.stringValue = text(s, f);
        break;
      case 4:
        if (f.wireType !== WIRE_VARINT || !regular32(0, f.end - f.start)) s.irregular = true;
        else out.boolValue = varint32(s.bytes, f.start, f.end) !== 0;
        break;
      case 5:
        if (isLen(s, f)) out.structValue = struct(s, f.start, f.end, depth + 1);
        break;
      case 6:
        if (isLen(s, f)) out.listValue = listValue(s, f.start, f.end, depth + 1);
        break;
    }
  }
  return out;
}

function listValue(s: DecodeState, start: number, end: number, depth: number): { values?: WireStructValue[] } {
  enter(s, depth);
  const values: WireStructValue[] = [];
  const cursor = { pos: start, end };
  const f = newField();
  while (nextField(s, 'ListValue', SCAN_SCHEMA.ListValue, cursor, f)) {
    if (f.number === 1 && isLen(s, f)) values.push(structValue(s, f.start, f.end, depth + 1));
  }
  return values.length > 0 ? { values } : {};
}

// ---- leaf messages (the limit scan skips over them as one field) ----

/** Declared wire types of a leaf message's fields; a nested leaf message is checked with its own table. */
interface OpaqueSchema {
  [field: number]: number | OpaqueSchema;
}
const STRING_MAP_ENTRY: OpaqueSchema = { 1: WIRE_LEN, 2: WIRE_LEN };
const PIPE: OpaqueSchema = { 1: WIRE_LEN, 2: WIRE_VARINT };
const ENVOY_INTERNAL_ADDRESS: OpaqueSchema = { 1: WIRE_LEN, 2: WIRE_LEN };
const SOCKET_ADDRESS: OpaqueSchema = {
  1: WIRE_VARINT,
  2: WIRE_LEN,
  3: WIRE_VARINT,
  4: WIRE_LEN,
  5: WIRE_LEN,
  6: WIRE_VARINT,
  7: WIRE_LEN,
};
const TIMESTAMP: OpaqueSchema = { 1: WIRE_VARINT, 2: WIRE_VARINT };
const TLS_SESSION: OpaqueSchema = { 1: WIRE_LEN };
const ANY: OpaqueSchema = { 1: WIRE_LEN, 2: WIRE_LEN };
const ANY_MAP_ENTRY: OpaqueSchema = { 1: WIRE_LEN, 2: ANY };

/**
 * Walks a leaf message and calls `visit` for each well-formed field; anything
 * a conforming encoder would not write marks the request irregular (and
 * protobufjs then reads it). Never throws.
 */
function walkOpaque(
  s: DecodeState,
  start: number,
  end: number,
  schema: OpaqueSchema,
  visit?: (number: number, start: number, end: number) => void,
): void {
  const bytes = s.bytes;
  let pos = start;
  let hasValue = false;
  while (pos < end) {
    const tag = looseVarint(bytes, pos, end);
    if (tag === undefined || !regular32(tag[0], tag[1] - pos)) return void (s.irregular = true);
    pos = tag[1];
    const number = Math.floor(tag[0] / 8);
    const wireType = tag[0] % 8;
    const declared = schema[number];
    const expected = typeof declared === 'object' ? WIRE_LEN : declared;
    if (number === 0 || (expected !== undefined && expected !== wireType)) return void (s.irregular = true);
    let valueStart = pos;
    if (wireType === WIRE_VARINT) {
      const v = looseVarint(bytes, pos, end);
      // protobufjs reads declared varints with uint32(), except Timestamp.seconds (the one int64 here).
      const isInt64 = schema === TIMESTAMP && number === 1;
      if (v === undefined || (declared !== undefined && !isInt64 && !regular32(0, v[1] - pos)))
        return void (s.irregular = true);
      pos = v[1];
    } else if (wireType === WIRE_FIXED64) pos += 8;
    else if (wireType === WIRE_FIXED32) pos += 4;
    else if (wireType === WIRE_LEN) {
      const length = looseVarint(bytes, pos, end);
      if (length === undefined || !regular32(length[0], length[1] - pos)) return void (s.irregular = true);
      valueStart = length[1];
      pos = length[1] + length[0];
    } else return void (s.irregular = true);
    if (pos > end) return void (s.irregular = true);
    if (typeof declared === 'object') {
      walkOpaque(s, valueStart, pos, declared);
      hasValue = true;
    }
    visit?.(number, valueStart, pos);
  }
  // A map entry whose message value is missing: protobufjs's toObject fails on it.
  if (schema === ANY_MAP_ENTRY && !hasValue) s.irregular = true;
}

function checkOpaque(s: DecodeState, start: number, end: number, schema: OpaqueSchema): void {
  walkOpaque(s, start, end, schema);
}

function stringEntry(s: DecodeState, start: number, end: number): [string, string] | undefined {
  let key = '';
  let value = '';
  walkOpaque(s, start, end, STRING_MAP_ENTRY, (number, a, b) => {
    if (number === 1) key = utf8(s.bytes, a, b);
    else if (number === 2) value = utf8(s.bytes, a, b);
  });
  return s.irregular ? undefined : [key, value];
}

function socketAddress(s: DecodeState, start: number, end: number): WireSocketAddress {
  const out: WireSocketAddress = {};
  walkOpaque(s, start, end, SOCKET_ADDRESS, (number, a, b) => {
    if (number === 2) out.address = utf8(s.bytes, a, b);
    else if (number === 3) out.port_value = varint32(s.bytes, a, b) >>> 0;
  });
  return out;
}

function timestamp(s: DecodeState, start: number, end: number): WireTimestamp {
  const out: WireTimestamp = {};
  walkOpaque(s, start, end, TIMESTAMP, (number, a, b) => {
    if (number === 1) out.seconds = int64String(s.bytes, a, b);
    else if (number === 2) out.nanos = varint32(s.bytes, a, b) | 0;
  });
  return out;
}

function tlsSession(s: DecodeState, start: number, end: number): { sni?: string } {
  const out: { sni?: string } = {};
  walkOpaque(s, start, end, TLS_SESSION, (number, a, b) => {
    if (number === 1) out.sni = s.bytes.toString('utf8', a, b);
  });
  return out;
}

// ---- varints ----

/**
 * Whether protobufjs's uint32() reads this varint as we do: it takes 5 bytes
 * and then skips 5 more without looking, so a varint of 6 to 9 bytes (which
 * no encoder writes for a 32-bit value), or a value past 32 bits, is read
 * differently.
 */
function regular32(value: number, length: number): boolean {
  return (length <= 5 || length === 10) && value < 2 ** 32;
}

/** A varint that may be malformed: undefined instead of a throw. */
function looseVarint(bytes: Uint8Array, pos: number, end: number): [number, number] | undefined {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 10; i++) {
    if (pos >= end) return undefined;
    const b = bytes[pos++];
    value += (b & 0x7f) * scale;
    if (b < 0x80) return [value, pos];
    scale *= 128;
  }
  return undefined;
}

/** The low 32 bits of a well-formed varint, as protobufjs's uint32() keeps them. */
function varint32(bytes: Uint8Array, start: number, end: number): number {
  let value = 0;
  for (let i = 0; i < 5 && start + i < end; i++) value |= (bytes[start + i] & 0x7f) << (7 * i);
  return value >>> 0;
}

/** A well-formed varint as a two's-complement int64, in decimal (proto-loader's `longs: String`). */
function int64String(bytes: Uint8Array, start: number, end: number): string {
  if (end - start <= 7) {
    let value = 0;
    let scale = 1;
    for (let i = start; i < end; i++, scale *= 128) value += (bytes[i] & 0x7f) * scale;
    return String(value);
  }
  let value = 0n;
  for (let i = end - 1; i >= start; i--) value = (value << 7n) | BigInt(bytes[i] & 0x7f);
  return BigInt.asIntN(64, value).toString();
}

function hasKeys(o: object): boolean {
  for (const _ in o) return true;
  return false;
}

// ---- entry point ----

type Decode = (bytes: Buffer) => WireCheckRequest;
let reference: Decode | undefined;

/** protobufjs through proto-loader: the reading of irregular bytes (and of every request before this decoder). */
function referenceDecode(bytes: Buffer): WireCheckRequest {
  reference ??= authorizationService().service.Check.requestDeserialize as Decode;
  return reference(bytes);
}

/**
 * Decodes a CheckRequest, or returns a refusal value (refusalOf) for bytes
 * over a limit (431) or not a CheckRequest (400). Never throws.
 */
export function decodeCheckRequest(
  bytes: Buffer,
  limits: CheckRequestLimits = DEFAULT_CHECK_REQUEST_LIMITS,
  onIrregular?: () => void,
): WireCheckRequest {
  if (bytes.length > limits.maxRequestBytes) {
    return refusedCheckRequest({
      reason: 'request_too_large',
      message: `CheckRequest is ${bytes.length} bytes, more than the limit of ${limits.maxRequestBytes} (max-request-bytes)`,
    });
  }
  const state: DecodeState = {
    bytes,
    limits,
    fields: 0,
    headers: 0,
    headerBytes: 0,
    contextExtensions: 0,
    irregular: false,
    next: 0,
  };
  let decoded: WireCheckRequest;
  try {
    decoded = checkRequest(state, 0, bytes.length);
  } catch (err) {
    if (err instanceof Refused) return refusedCheckRequest(err.refusal);
    return refusedCheckRequest({ reason: 'malformed_request', message: 'CheckRequest is not valid protobuf' });
  }
  if (!state.irregular) return decoded;
  onIrregular?.();
  try {
    return referenceDecode(bytes);
  } catch {
    return refusedCheckRequest({ reason: 'malformed_request', message: 'CheckRequest is not valid protobuf' });
  }
}

/** The grpc-js deserializer: `decodeCheckRequest` with the server's limits. */
export function checkRequestDeserializer(limits: CheckRequestLimits): (bytes: Buffer) => WireCheckRequest {
  return (bytes) => decodeCheckRequest(bytes, limits);
}
