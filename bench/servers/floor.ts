/**
 * The transport floor: grpc-js serving Check with a constant, pre-encoded OK,
 * never decoding the request. Whatever our server costs beyond this is ours.
 */
import * as grpc from '@grpc/grpc-js';
import { authorizationService } from '../../src/envoy/protos.js';
import { CHECK_PATH } from '../requests.js';
import { serveChild } from './child.js';

const OK: Buffer = authorizationService().service.Check.responseSerialize({ status: { code: 0 }, ok_response: {} }) as Buffer;
const identity = (b: Buffer): Buffer => b;

const server = new grpc.Server();
server.addService(
  { Check: { path: CHECK_PATH, requestStream: false, responseStream: false, requestDeserialize: identity, requestSerialize: identity, responseSerialize: () => OK, responseDeserialize: identity } },
  { Check: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => callback(null, OK) },
);
server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) throw err;
  serveChild({ port }, () => new Promise((resolve) => server.tryShutdown(() => resolve())));
});
