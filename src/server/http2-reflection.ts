/**
 * gRPC server reflection on the http2 transport: the same services (v1 and
 * grpcurl's older v1alpha) and the same answers as on grpc-js, because the
 * answers come from the same library. `@grpc/reflection` registers its
 * ServerReflectionInfo handlers through `addService`; we take them from there
 * and give each bidi call the part of grpc-js's duplex stream the handler uses
 * (`data` and `end` events, `write`, `end`), over our own framing
 * (http2-grpc-calls.ts). test/component/http2-transport.test.ts drives it with
 * the grpc-js reflection client, so an upgrade that needs more fails there.
 */
import { EventEmitter } from 'node:events';
import type http2 from 'node:http2';
import type * as grpc from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import { protoPackageDefinition } from '../envoy/protos.js';
import { GrpcStatus } from './grpc-framing.js';
import { readMessageStream, StreamingResponse } from './http2-grpc-calls.js';

/** A reflection request names one symbol or file; nothing near this size is one. */
const MAX_REFLECTION_REQUEST_BYTES = 64 * 1024;

interface ReflectionMethod {
  deserialize: (bytes: Buffer) => unknown;
  serialize: (value: unknown) => Buffer;
  handler: (call: ReflectionCall) => void;
}

/** What `@grpc/reflection`'s handler reads of a grpc-js ServerDuplexStream. */
class ReflectionCall extends EventEmitter {
  constructor(
    private readonly response: StreamingResponse,
    private readonly serialize: (value: unknown) => Buffer,
  ) {
    super();
  }

  write(message: unknown): boolean {
    return this.response.write(this.serialize(message));
  }

  end(): void {
    this.response.finish();
  }
}

/** The reflection methods by path (`/grpc.reflection.v1.ServerReflection/ServerReflectionInfo`, and v1alpha's). */
export class Http2Reflection {
  private readonly methods = new Map<string, ReflectionMethod>();

  constructor() {
    const capture: Pick<grpc.Server, 'addService'> = {
      addService: (service: grpc.ServiceDefinition, implementation: grpc.UntypedServiceImplementation) => {
        for (const [name, definition] of Object.entries(service)) {
          this.methods.set(definition.path, {
            deserialize: definition.requestDeserialize as ReflectionMethod['deserialize'],
            serialize: definition.responseSerialize as ReflectionMethod['serialize'],
            handler: implementation[name] as unknown as ReflectionMethod['handler'],
          });
        }
      },
    };
    new ReflectionService(protoPackageDefinition()).addToServer(capture);
  }

  serves(path: string | undefined): boolean {
    return path !== undefined && this.methods.has(path);
  }

  /** Serves one ServerReflectionInfo call: an answer per request, ended when the client half-closes. */
  serve(stream: http2.ServerHttp2Stream, path: string): void {
    const method = this.methods.get(path)!;
    const response = new StreamingResponse(stream);
    const call = new ReflectionCall(response, method.serialize);
    try {
      method.handler(call);
    } catch (err) {
      response.finish(GrpcStatus.INTERNAL, `reflection: ${(err as Error).message}`);
      return;
    }
    readMessageStream(stream, MAX_REFLECTION_REQUEST_BYTES, {
      message: (bytes) => {
        if (!response.open) return;
        let request: unknown;
        try {
          request = method.deserialize(bytes);
        } catch {
          response.finish(GrpcStatus.INTERNAL, 'ServerReflectionRequest is not valid protobuf');
          stream.resume();
          return;
        }
        try {
          call.emit('data', request);
        } catch (err) {
          response.finish(GrpcStatus.INTERNAL, `reflection: ${(err as Error).message}`);
          return;
        }
        // A client that sends requests without reading the answers is not read further until it does.
        if (stream.writableNeedDrain && !stream.isPaused()) {
          stream.pause();
          stream.once('drain', () => stream.resume());
        }
      },
      end: () => call.emit('end'),
      error: (code, message) => response.finish(code, message),
    });
  }
}
