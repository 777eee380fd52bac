/**
 * CheckResponse → protobuf bytes in one pass, written from the Envoy API
 * reference (envoy/service/auth/v3/external_auth.proto, config/core/v3/base.proto,
 * google/rpc/status.proto, google/protobuf/struct.proto and wrappers.proto)
 * rather than through protobufjs, whose `fromObject` + `encode` built a
 * message object and a list of write operations per response
 * (docs/performance.md, "Transports").
 *
 * The bytes are written back to front into a scratch buffer: a nested
 * message is written first and its length is then known, so no size pass and
 * no per-message buffers are needed. Fields and repeated elements are
 * therefore written in reverse, so the bytes come out in field-number order,
 * the order protobufjs writes, and a field is written exactly when protobufjs
 * writes it (present and not null, defaults included).
 * test/property/check-response-encoder.property.test.ts checks that the bytes
 * decode with protobufjs to the same message as protobufjs's own encoding.
 */
import type { WireCheckResponse, WireHeaderValueOption, WireStruct, WireStructValue } from './wire-types.js';

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LEN = 2;

/** envoy.config.core.v3.HeaderValueOption.HeaderAppendAction. */
const APPEND_ACTIONS: Record<string, number> = {
  APPEND_IF_EXISTS_OR_ADD: 0,
  ADD_IF_ABSENT: 1,
  OVERWRITE_IF_EXISTS_OR_ADD: 2,
  OVERWRITE_IF_EXISTS: 3,
};

/** Grows (and the response is written again) when a response does not fit; most fit the first size. */
const INITIAL_SCRATCH_BYTES = 16 * 1024;
/** gRPC message prefix: compressed flag + 4-byte length. */
const PREFIX_BYTES = 5;

class ScratchFull extends Error {}
const SCRATCH_FULL = new ScratchFull('scratch buffer full');

/** Writes toward the start of `buf`; `pos` is the first byte written so far. */
class BackwardWriter {
  buf: Buffer;
  pos: number;

  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
    this.pos = size;
  }

  reset(): void {
    this.pos = this.buf.length;
  }

  private room(n: number): number {
    if (this.pos < n) throw SCRATCH_FULL;
    this.pos -= n;
    return this.pos;
  }

  /** A varint of a non-negative integer below 2^53. */
  varint(value: number): void {
    let size = 1;
    for (let v = value; v >= 0x80; size++) v = Math.floor(v / 128);
    let at = this.room(size);
    let v = value;
    while (v >= 0x80) {
      this.buf[at++] = (v & 0x7f) | 0x80;
      v = Math.floor(v / 128);
    }
    this.buf[at] = v;
  }

  /** int32 and enum values: a negative one is sign-extended to 10 bytes, as protobuf does. */
  int32(value: number): void {
    const v = value | 0;
    if (v >= 0) {
      this.varint(v);
      return;
    }
    const at = this.room(10);
    let lo = v >>> 0;
    for (let i = 0; i < 4; i++) {
      this.buf[at + i] = (lo & 0x7f) | 0x80;
      lo >>>= 7;
    }
    // Bits 28–63 of the two's complement: the low 4 from `lo`, the rest all ones.
    this.buf[at + 4] = (lo & 0x0f) | 0xf0;
    for (let i = 5; i < 9; i++) this.buf[at + i] = 0xff;
    this.buf[at + 9] = 0x01;
  }

  tag(field: number, wire: number): void {
    // Every field number here is below 16: one byte.
    this.buf[this.room(1)] = (field << 3) | wire;
  }

  /** A length-delimited field whose content was written after `end` was taken (content = pos..end). */
  closeLen(field: number, end: number): void {
    this.varint(end - this.pos);
    this.tag(field, WIRE_LEN);
  }

  string(field: number, value: string): void {
    // ASCII (nearly every header, id and reason) is copied char by char where it will sit: for strings
    // this short that is cheaper than a call into Buffer's encoder. Anything else goes through the encoder.
    const n = value.length;
    const at = this.room(n);
    let ascii = true;
    for (let i = 0; i < n; i++) {
      const c = value.charCodeAt(i);
      if (c > 0x7f) {
        ascii = false;
        break;
      }
      this.buf[at + i] = c;
    }
    let length = n;
    if (!ascii) {
      this.pos += n;
      // A lone surrogate becomes U+FFFD (3 bytes, as Buffer.byteLength counts it): Envoy refuses a string that is not UTF-8.
      length = Buffer.byteLength(value, 'utf8');
      this.buf.write(value, this.room(length), length, 'utf8');
    }
    this.varint(length);
    this.tag(field, WIRE_LEN);
  }

  bool(field: number, value: unknown): void {
    this.buf[this.room(1)] = value ? 1 : 0;
    this.tag(field, WIRE_VARINT);
  }

  double(field: number, value: number): void {
    this.buf.writeDoubleLE(value, this.room(8));
    this.tag(field, WIRE_FIXED64);
  }
}

// google.protobuf.Struct / Value / ListValue
function writeValue(w: BackwardWriter, value: WireStructValue): void {
  // Value fields: null_value 1, number_value 2, string_value 3, bool_value 4, struct_value 5, list_value 6.
  if (value.listValue != null) {
    const end = w.pos;
    const values = value.listValue.values;
    if (values) for (let i = values.length - 1; i >= 0; i--) writeValueField(w, 1, values[i]);
    w.closeLen(6, end);
  }
  if (value.structValue != null) writeStructField(w, 5, value.structValue);
  if (value.boolValue != null) w.bool(4, value.boolValue);
  if (value.stringValue != null) w.string(3, String(value.stringValue));
  if (value.numberValue != null) w.double(2, Number(value.numberValue));
  if (value.nullValue != null) {
    w.int32(typeof value.nullValue === 'number' ? value.nullValue : 0);
    w.tag(1, WIRE_VARINT);
  }
}

function writeValueField(w: BackwardWriter, field: number, value: WireStructValue): void {
  const end = w.pos;
  writeValue(w, value);
  w.closeLen(field, end);
}

function writeStructField(w: BackwardWriter, field: number, struct: WireStruct): void {
  const end = w.pos;
  const fields = struct.fields;
  if (fields) {
    // map<string, Value> fields = 1: one entry message { key = 1, value = 2 } per key, key and value always written.
    const keys = Object.keys(fields);
    for (let i = keys.length - 1; i >= 0; i--) {
      const entryEnd = w.pos;
      writeValueField(w, 2, fields[keys[i]]);
      w.string(1, keys[i]);
      w.closeLen(1, entryEnd);
    }
  }
  w.closeLen(field, end);
}

// envoy.config.core.v3.HeaderValueOption { header 1, append 2 (BoolValue), append_action 3, keep_empty_value 4 }
function writeHeaderOptions(w: BackwardWriter, field: number, options: WireHeaderValueOption[]): void {
  for (let i = options.length - 1; i >= 0; i--) {
    const option = options[i];
    const end = w.pos;
    if (option.append_action != null) {
      w.int32(
        typeof option.append_action === 'number' ? option.append_action : (APPEND_ACTIONS[option.append_action] ?? 0),
      );
      w.tag(3, WIRE_VARINT);
    }
    if (option.append != null) {
      const appendEnd = w.pos;
      if (option.append.value != null) w.bool(1, option.append.value);
      w.closeLen(2, appendEnd);
    }
    if (option.header != null) {
      // HeaderValue { key 1, value 2 }
      const headerEnd = w.pos;
      if (option.header.value != null) w.string(2, option.header.value);
      if (option.header.key != null) w.string(1, option.header.key);
      w.closeLen(1, headerEnd);
    }
    w.closeLen(field, end);
  }
}

function writeStrings(w: BackwardWriter, field: number, values: string[]): void {
  for (let i = values.length - 1; i >= 0; i--) w.string(field, values[i]);
}

function writeCheckResponse(w: BackwardWriter, r: WireCheckResponse): void {
  // CheckResponse { status 1, denied_response 2, ok_response 3, dynamic_metadata 4 }
  if (r.dynamic_metadata != null) writeStructField(w, 4, r.dynamic_metadata);
  const ok = r.ok_response;
  if (ok != null) {
    // OkHttpResponse { headers 2, headers_to_remove 5, response_headers_to_add 6, query_parameters_to_remove 8 }
    const end = w.pos;
    if (ok.query_parameters_to_remove != null) writeStrings(w, 8, ok.query_parameters_to_remove);
    if (ok.response_headers_to_add != null) writeHeaderOptions(w, 6, ok.response_headers_to_add);
    if (ok.headers_to_remove != null) writeStrings(w, 5, ok.headers_to_remove);
    if (ok.headers != null) writeHeaderOptions(w, 2, ok.headers);
    w.closeLen(3, end);
  }
  const denied = r.denied_response;
  if (denied != null) {
    // DeniedHttpResponse { status 1 (HttpStatus { code 1 }), headers 2, body 3 }
    const end = w.pos;
    if (denied.body != null) w.string(3, denied.body);
    if (denied.headers != null) writeHeaderOptions(w, 2, denied.headers);
    if (denied.status != null) {
      const statusEnd = w.pos;
      if (denied.status.code != null) {
        w.int32(denied.status.code);
        w.tag(1, WIRE_VARINT);
      }
      w.closeLen(1, statusEnd);
    }
    w.closeLen(2, end);
  }
  if (r.status != null) {
    // google.rpc.Status { code 1, message 2 }
    const end = w.pos;
    if (r.status.message != null) w.string(2, r.status.message);
    if (r.status.code != null) {
      w.int32(r.status.code);
      w.tag(1, WIRE_VARINT);
    }
    w.closeLen(1, end);
  }
}

let scratch = new BackwardWriter(INITIAL_SCRATCH_BYTES);

/** Writes the response (after a gRPC message prefix when `framed`) into the shared scratch buffer, growing it until it fits. */
function encode(response: WireCheckResponse, framed: boolean): Buffer {
  for (;;) {
    const w = scratch;
    w.reset();
    try {
      writeCheckResponse(w, response);
      if (framed) {
        const length = w.buf.length - w.pos;
        if (w.pos < PREFIX_BYTES) throw SCRATCH_FULL;
        w.pos -= PREFIX_BYTES;
        w.buf[w.pos] = 0;
        w.buf.writeUInt32BE(length, w.pos + 1);
      }
    } catch (err) {
      if (err !== SCRATCH_FULL) throw err;
      scratch = new BackwardWriter(w.buf.length * 2);
      continue;
    }
    // Owned bytes (the stream holds them until sent); small ones come from Node's shared pool.
    const out = Buffer.allocUnsafe(w.buf.length - w.pos);
    w.buf.copy(out, 0, w.pos);
    return out;
  }
}

/** The CheckResponse's bytes (grpc-js's responseSerialize). */
export function encodeCheckResponse(response: WireCheckResponse): Buffer {
  return encode(response, false);
}

/** The CheckResponse as one gRPC message: the 5-byte prefix, then its bytes (the http2 transport's DATA). */
export function encodeFramedCheckResponse(response: WireCheckResponse): Buffer {
  return encode(response, true);
}
