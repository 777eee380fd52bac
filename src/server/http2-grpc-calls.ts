/**
 * One gRPC call on a node:http2 stream, as the http2 transport answers it:
 * reading the request message(s), answering with a message and status, a
 * trailers-only status, or a stream of messages (Health Watch, reflection).
 * The wire rules are in grpc-framing.ts.
 */
import type http2 from 'node:http2';
import {
  encodeGrpcMessage,
  frameMessage,
  GrpcMessageReader,
  GrpcStatus,
  type FramingError,
  type GrpcStatusCode,
} from './grpc-framing.js';

// One object each, reused by every call: node:http2 copies them into its header list.
const RESPONSE_HEADERS: http2.OutgoingHttpHeaders = Object.freeze({
  ':status': 200,
  'content-type': 'application/grpc',
  'grpc-accept-encoding': 'identity',
});
const OK_TRAILERS: http2.OutgoingHttpHeaders = Object.freeze({ 'grpc-status': '0', 'grpc-message': 'OK' });
// No `date` header: gRPC does not read it, and node:http2 would format and copy it into every response.
const WAIT_FOR_TRAILERS = Object.freeze({
  waitForTrailers: true,
  sendDate: false,
}) as http2.ServerStreamResponseOptions;
const END_STREAM = Object.freeze({ endStream: true, sendDate: false }) as http2.ServerStreamResponseOptions;

function sendOkTrailers(this: http2.ServerHttp2Stream): void {
  this.sendTrailers(OK_TRAILERS);
}

/** A unary answer: headers, the one message (prefix included in `framed`), then grpc-status 0 in the trailers. */
export function sendFramedMessage(stream: http2.ServerHttp2Stream, framed: Buffer): void {
  if (stream.destroyed || stream.closed || stream.headersSent) return;
  stream.respond(RESPONSE_HEADERS, WAIT_FOR_TRAILERS);
  stream.once('wantTrailers', sendOkTrailers);
  stream.end(framed);
}

export function sendMessage(stream: http2.ServerHttp2Stream, message: Uint8Array): void {
  sendFramedMessage(stream, frameMessage(message));
}

/** A trailers-only response: the status in the one HEADERS frame, which ends the stream. */
export function sendStatus(stream: http2.ServerHttp2Stream, code: GrpcStatusCode, message: string): void {
  if (stream.destroyed || stream.closed || stream.headersSent) return;
  stream.respond(
    {
      ':status': 200,
      'content-type': 'application/grpc',
      'grpc-status': String(code),
      'grpc-message': encodeGrpcMessage(message),
    },
    END_STREAM,
  );
}

/**
 * The server's side of a streaming response (Health Watch, reflection):
 * headers before the first message, any number of messages, then a status in
 * the trailers (or trailers-only when no message was sent).
 */
export class StreamingResponse {
  private finished = false;

  constructor(readonly stream: http2.ServerHttp2Stream) {}

  get open(): boolean {
    return !this.finished && !this.stream.destroyed && !this.stream.closed;
  }

  /** Sends one message; false once the call is over. */
  write(message: Uint8Array): boolean {
    if (!this.open) return false;
    if (!this.stream.headersSent) this.stream.respond(RESPONSE_HEADERS, WAIT_FOR_TRAILERS);
    this.stream.write(frameMessage(message));
    return true;
  }

  /** Ends the call with a status (OK: the server is done, e.g. shutting down). */
  finish(code: GrpcStatusCode = GrpcStatus.OK, message = 'OK'): void {
    if (!this.open) return;
    this.finished = true;
    const stream = this.stream;
    if (!stream.headersSent) {
      sendStatus(stream, code, message);
      return;
    }
    stream.once('wantTrailers', () =>
      stream.sendTrailers({ 'grpc-status': String(code), 'grpc-message': encodeGrpcMessage(message) }),
    );
    stream.end();
  }
}

export type ReadOutcome =
  | { kind: 'message'; message: Buffer }
  | { kind: 'oversize' }
  | { kind: 'compressed' }
  | { kind: 'error'; code: GrpcStatusCode; message: string };

/** The status a framing error is answered with (an oversize or compressed message is the caller's to answer). */
export function framingErrorOutcome(error: FramingError): ReadOutcome {
  switch (error.kind) {
    case 'oversize':
      return { kind: 'oversize' };
    case 'compressed':
      return { kind: 'compressed' };
    case 'bad_flag':
      return { kind: 'error', code: GrpcStatus.INTERNAL, message: `invalid message flag ${error.flag}` };
    case 'extra_message':
      return {
        kind: 'error',
        code: GrpcStatus.UNIMPLEMENTED,
        message: 'more than one request message for a unary method',
      };
  }
}

/** What an answer before the client finished sending leaves: the rest is read and dropped, never held. */
function drainRest(stream: http2.ServerHttp2Stream): void {
  // (Pausing instead leaves a grpc-js client blocked on its write, never reading the answer: tested.)
  if (!stream.readableEnded) stream.resume();
}

/**
 * Reads the one request message of a unary (or server-streaming) call. A
 * message over `maxBytes` is answered as soon as its prefix arrives; the call
 * is answered at the client's half-close, so a second message is still caught.
 */
export function readUnaryMessage(
  stream: http2.ServerHttp2Stream,
  maxBytes: number,
  done: (outcome: ReadOutcome) => void,
): void {
  let message: Buffer | undefined;
  let finished = false;
  const reader = new GrpcMessageReader(
    maxBytes,
    (m) => {
      message = m;
    },
    1,
  );
  const finish = (outcome: ReadOutcome): void => {
    if (finished) return;
    finished = true;
    stream.off('data', onData);
    stream.off('end', onEnd);
    if (outcome.kind !== 'message') drainRest(stream);
    done(outcome);
  };
  const onData = (chunk: Buffer): void => {
    const error = reader.push(chunk);
    if (error) finish(framingErrorOutcome(error));
  };
  const onEnd = (): void => {
    if (reader.partial)
      finish({
        kind: 'error',
        code: GrpcStatus.INTERNAL,
        message: 'the call ended inside a message (truncated length prefix or body)',
      });
    else if (message === undefined)
      finish({ kind: 'error', code: GrpcStatus.INTERNAL, message: 'the call ended without a request message' });
    else finish({ kind: 'message', message });
  };
  stream.on('data', onData);
  stream.on('end', onEnd);
}

export interface MessageStreamEvents {
  message(message: Buffer): void;
  /** The client half-closed after whole messages. */
  end(): void;
  /** Bad framing, a message over the bound, or a half-close inside a message: the call is to be ended with this. */
  error(code: GrpcStatusCode, message: string): void;
}

/** Reads every request message of a client- or bidi-streaming call, as each completes. */
export function readMessageStream(
  stream: http2.ServerHttp2Stream,
  maxBytes: number,
  events: MessageStreamEvents,
): void {
  let failed = false;
  const reader = new GrpcMessageReader(maxBytes, (m) => events.message(m));
  const fail = (code: GrpcStatusCode, message: string): void => {
    failed = true;
    stream.off('data', onData);
    drainRest(stream);
    events.error(code, message);
  };
  const onData = (chunk: Buffer): void => {
    const error = reader.push(chunk);
    if (!error) return;
    if (error.kind === 'oversize')
      fail(GrpcStatus.RESOURCE_EXHAUSTED, `a request message is more than ${maxBytes} bytes`);
    else if (error.kind === 'compressed')
      fail(GrpcStatus.UNIMPLEMENTED, 'compressed messages are not supported; send identity');
    else {
      const outcome = framingErrorOutcome(error) as { code: GrpcStatusCode; message: string };
      fail(outcome.code, outcome.message);
    }
  };
  stream.on('data', onData);
  stream.once('end', () => {
    if (failed) return;
    if (reader.partial)
      events.error(GrpcStatus.INTERNAL, 'the call ended inside a message (truncated length prefix or body)');
    else events.end();
  });
}
