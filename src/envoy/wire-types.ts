/**
 * Shapes of the messages as @grpc/proto-loader decodes them with the options
 * in `protos.ts` (keepCase, longs as strings, enums as strings, no defaults,
 * bytes as Buffer). Every field is optional: Envoy omits what it does not know,
 * and a hostile or broken client may send anything.
 */
export interface WireSocketAddress {
  protocol?: string;
  address?: string;
  port_value?: number;
  named_port?: string;
}

export interface WireAddress {
  socket_address?: WireSocketAddress;
  pipe?: { path?: string; mode?: number };
  envoy_internal_address?: { server_listener_name?: string; endpoint_id?: string };
}

export interface WirePeer {
  address?: WireAddress;
  service?: string;
  labels?: Record<string, string>;
  principal?: string;
  certificate?: string;
}

export interface WireHeaderValue {
  key?: string;
  value?: string;
  raw_value?: Buffer | Uint8Array;
}

export interface WireHttpRequest {
  id?: string;
  method?: string;
  headers?: Record<string, string>;
  path?: string;
  host?: string;
  scheme?: string;
  query?: string;
  fragment?: string;
  size?: string | number;
  protocol?: string;
  body?: string;
  raw_body?: Buffer | Uint8Array;
  header_map?: { headers?: WireHeaderValue[] };
}

export interface WireTimestamp {
  seconds?: string | number;
  nanos?: number;
}

export interface WireStructValue {
  nullValue?: unknown;
  numberValue?: number;
  stringValue?: string;
  boolValue?: boolean;
  structValue?: WireStruct;
  listValue?: { values?: WireStructValue[] };
  kind?: string;
}

export interface WireStruct {
  fields?: Record<string, WireStructValue>;
}

export interface WireAttributeContext {
  source?: WirePeer;
  destination?: WirePeer;
  request?: { time?: WireTimestamp; http?: WireHttpRequest };
  context_extensions?: Record<string, string>;
  metadata_context?: { filter_metadata?: Record<string, WireStruct> };
  route_metadata_context?: { filter_metadata?: Record<string, WireStruct> };
  tls_session?: { sni?: string };
}

export interface WireCheckRequest {
  attributes?: WireAttributeContext;
}

export interface WireHeaderValueOption {
  header: { key: string; value: string };
  append?: { value: boolean };
  append_action?: 'APPEND_IF_EXISTS_OR_ADD' | 'ADD_IF_ABSENT' | 'OVERWRITE_IF_EXISTS_OR_ADD' | 'OVERWRITE_IF_EXISTS';
}

export interface WireCheckResponse {
  status: { code: number; message?: string };
  denied_response?: {
    status: { code: number };
    headers: WireHeaderValueOption[];
    body: string;
  };
  ok_response?: {
    headers: WireHeaderValueOption[];
    headers_to_remove?: string[];
    response_headers_to_add?: WireHeaderValueOption[];
    query_parameters_to_remove?: string[];
  };
  dynamic_metadata?: WireStruct;
}
