/**
 * Bounds on the gRPC listener's HTTP/2 transport, and the two places where
 * grpc-js gives no hook and we reach into it (each guarded, each covered by a
 * test in test/component/hostile-input.test.ts so an upgrade that moves them
 * fails loudly):
 *
 * - header lists: grpc-js passes only `maxConcurrentStreams` to node:http2, so
 *   `settings.maxHeaderListSize` and `maxHeaderListPairs` are added to the
 *   options object it hands to `http2.createServer` (`commonServerOptions`).
 *   node:http2 then resets a stream whose decoded header list passes the size
 *   (an HPACK amplification: 100 references to a 4 KiB table entry is 400 KiB
 *   decoded from 100 bytes sent) before any JavaScript string is made.
 * - half-received messages: grpc-js buffers a message until it is complete, in
 *   JavaScript, outside any node:http2 memory accounting. The interceptor
 *   below counts each call's received bytes (from its http2 stream) until the
 *   client half-closes, drops the largest pending call when the total passes
 *   `maxPendingRequestBytes`, and drops calls whose message has not arrived
 *   within `grpcReceiveTimeout`.
 *
 * The interceptor also turns grpc-js's RESOURCE_EXHAUSTED for a Check message
 * over `maxRequestBytes` (decided from the 5-byte length prefix, before the
 * message is buffered) into a 431 deny decision.
 */
import http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import type { TransportConfig } from '../config/transport-schema.js';

/** HTTP/2 header entries per request (pseudo-headers included); Envoy's ext_authz call sends about 15. */
export const GRPC_MAX_HEADER_PAIRS = 64;
/** How often calls are checked against the receive timeout. */
const SWEEP_INTERVAL_MS = 1000;

/** grpc-js channel options for the server (each one grpc-js reads; see its server.js). */
export function grpcServerOptions(t: TransportConfig, interceptors: grpc.ServerInterceptor[]): grpc.ServerOptions {
  return {
    'grpc.max_receive_message_length': t.maxRequestBytes,
    'grpc.max_concurrent_streams': t.grpcMaxConcurrentStreams,
    'grpc-node.max_session_memory': t.grpcMaxSessionMemory,
    'grpc.max_connection_idle_ms': t.grpcMaxConnectionIdle,
    'grpc.max_connection_age_ms': t.grpcMaxConnectionAge,
    'grpc.max_connection_age_grace_ms': t.grpcMaxConnectionAgeGrace,
    'grpc.keepalive_time_ms': t.grpcKeepaliveTime,
    'grpc.keepalive_timeout_ms': t.grpcKeepaliveTimeout,
    'grpc.keepalive_permit_without_calls': 1,
    interceptors,
  };
}

/** Adds header-list bounds to the node:http2 options grpc-js creates its listeners with. Call before bind. */
export function boundHeaderLists(server: grpc.Server, maxHeaderListBytes: number): void {
  const internals = server as unknown as { commonServerOptions?: http2.ServerOptions };
  const options = internals.commonServerOptions;
  if (!options || typeof options !== 'object') {
    // Refuse to serve without the bound rather than silently lose it after a grpc-js upgrade.
    throw new Error('grpc-js no longer exposes commonServerOptions: the HTTP/2 header list bound cannot be set');
  }
  options.settings = { ...options.settings, maxHeaderListSize: maxHeaderListBytes };
  options.maxHeaderListPairs = GRPC_MAX_HEADER_PAIRS;
}

export interface PendingCallEvents {
  /** A call was dropped: its half-received message made the total pass the bound, or it stalled. */
  onDropped(cause: 'memory' | 'receive_timeout'): void;
}

interface PendingCall {
  stream: http2.ServerHttp2Stream;
  bytes: number;
  startedMs: number;
}

/**
 * Request bytes received but not yet complete, over every call of the server.
 * Small (one Set entry per call in flight) and touched once per data chunk.
 */
export class PendingRequestBytes {
  private readonly calls = new Set<PendingCall>();
  private total = 0;
  private sweeper: NodeJS.Timeout | undefined;

  constructor(
    private readonly maxBytes: number,
    private readonly receiveTimeoutMs: number,
    private readonly events: PendingCallEvents,
  ) {}

  get bytes(): number {
    return this.total;
  }

  get size(): number {
    return this.calls.size;
  }

  /** Follows one call's stream until the client half-closes or the stream ends. */
  track(stream: http2.ServerHttp2Stream): void {
    const call: PendingCall = { stream, bytes: 0, startedMs: Date.now() };
    this.calls.add(call);
    const release = (): void => {
      if (!this.calls.delete(call)) return;
      this.total -= call.bytes;
      call.bytes = 0;
      stream.off('data', onData);
    };
    const onData = (chunk: Buffer): void => {
      if (!this.calls.has(call)) return;
      call.bytes += chunk.length;
      this.total += chunk.length;
      if (this.total > this.maxBytes) this.shed();
    };
    stream.on('data', onData);
    stream.once('end', release);
    stream.once('close', release);
    this.sweeper ??= setInterval(() => this.sweep(), SWEEP_INTERVAL_MS).unref();
  }

  /** Drops the calls holding the most until the total is back under the bound. */
  private shed(): void {
    while (this.total > this.maxBytes) {
      let largest: PendingCall | undefined;
      for (const c of this.calls) if (!largest || c.bytes > largest.bytes) largest = c;
      if (!largest || largest.bytes === 0) return;
      this.drop(largest, 'memory');
    }
  }

  private sweep(): void {
    const cutoff = Date.now() - this.receiveTimeoutMs;
    for (const c of this.calls) if (c.startedMs <= cutoff) this.drop(c, 'receive_timeout');
    if (this.calls.size === 0 && this.sweeper) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }

  private drop(call: PendingCall, cause: 'memory' | 'receive_timeout'): void {
    this.calls.delete(call);
    this.total -= call.bytes;
    call.bytes = 0;
    this.events.onDropped(cause);
    // RST_STREAM: the client sees the call fail, and grpc-js lets go of the buffered chunks.
    if (!call.stream.destroyed) call.stream.close(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
  }

  stop(): void {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = undefined;
  }
}

export interface TransportInterceptorOptions {
  pending: PendingRequestBytes;
  /** Full method path whose oversize requests are answered by `answerOversize` (the Check method). */
  checkPath: string;
  /** The response to send instead of RESOURCE_EXHAUSTED (a 431 deny, logged and counted). */
  answerOversize(details: string): unknown;
  /** Called once if a call arrives without the http2 stream we expect (grpc-js internals changed). */
  onUntracked(): void;
}

/**
 * A server interceptor that returns grpc-js's own call object (no wrapper on
 * the hot path), after attaching the pending-bytes tracker to its stream and,
 * for Check, answering an oversize message with a decision.
 */
export function transportInterceptor(options: TransportInterceptorOptions): grpc.ServerInterceptor {
  let warned = false;
  return ((method: grpc.ServerMethodDefinition<unknown, unknown>, call: grpc.ServerInterceptingCallInterface) => {
    const stream = (call as unknown as { stream?: http2.ServerHttp2Stream }).stream;
    if (stream && typeof stream.on === 'function' && typeof stream.close === 'function') options.pending.track(stream);
    else if (!warned) {
      warned = true;
      options.onUntracked();
    }
    if (method.path === options.checkPath) answerOversizeWithDecision(call, options.answerOversize);
    return call;
  }) as unknown as grpc.ServerInterceptor;
}

/** The answer for an oversize Check, set on each Check call (a long-lived function: no per-call closure). */
const OVERSIZE_ANSWER = Symbol('authz.oversizeAnswer');
/** Set once the oversize answer is being sent: grpc-js's own later sendStatus calls are then swallowed. */
const ANSWERING = Symbol('authz.answeringOversize');
type StatusObject = Parameters<grpc.ServerInterceptingCallInterface['sendStatus']>[0];
interface OversizeAnswerable {
  [OVERSIZE_ANSWER]?: (details: string) => unknown;
  [ANSWERING]?: true;
  sendStatus(status: StatusObject): void;
  sendMetadata(metadata: grpc.Metadata): void;
  sendMessage(message: unknown, callback: () => void): void;
}
/** grpc-js call classes whose sendStatus has been wrapped (once per class, for the life of the process). */
const wrappedCallClasses = new WeakSet<object>();

/**
 * grpc-js ends a call whose message is over grpc.max_receive_message_length
 * with RESOURCE_EXHAUSTED, calling sendStatus on its own call object; our Check
 * handler never answers RESOURCE_EXHAUSTED, so that status can only be this
 * refusal. It becomes a CheckResponse (431 deny) and status OK instead.
 *
 * The wrapper sits on grpc-js's call class (once), not on each call: a closure
 * over every call object made each call survive young-generation collections
 * (measured with `npm run profile -- --load distinct`: ~7 KB per check promoted
 * to the old generation, 35 MB per 5,000 checks, against 2–8 MB without it),
 * which is what filled the heap with garbage for the mark-compacts that stalled
 * the loop. A call opts in by carrying its server's answer under a symbol; any
 * other call of the class goes straight to grpc-js's own sendStatus.
 */
function answerOversizeWithDecision(
  call: grpc.ServerInterceptingCallInterface,
  answer: (details: string) => unknown,
): void {
  (call as unknown as OversizeAnswerable)[OVERSIZE_ANSWER] = answer;
  const proto = Object.getPrototypeOf(call) as OversizeAnswerable | null;
  if (proto === null || wrappedCallClasses.has(proto)) return;
  wrappedCallClasses.add(proto);
  const sendStatus = proto.sendStatus;
  proto.sendStatus = function (this: OversizeAnswerable, status: StatusObject): void {
    if (this[ANSWERING]) return;
    const answerOversize = this[OVERSIZE_ANSWER];
    if (answerOversize === undefined || status.code !== grpc.status.RESOURCE_EXHAUSTED) {
      sendStatus.call(this, status);
      return;
    }
    this[ANSWERING] = true;
    let response: unknown;
    try {
      response = answerOversize(status.details ?? '');
    } catch {
      sendStatus.call(this, status);
      return;
    }
    this.sendMetadata(new grpc.Metadata());
    this.sendMessage(response, () =>
      sendStatus.call(this, { code: grpc.status.OK, details: 'OK', metadata: new grpc.Metadata() }),
    );
  };
}
