// The transport floor: grpc-js serving Check with a constant, pre-encoded OK,
// never decoding the request. Whatever our server costs beyond this is ours.
import * as grpc from '@grpc/grpc-js';
import { authorizationService } from '../../dist/envoy/protos.js';
import { serveChild } from './child.mjs';

const CHECK_PATH = '/envoy.service.auth.v3.Authorization/Check';
const OK = authorizationService().service.Check.responseSerialize({ status: { code: 0 }, ok_response: {} });
const identity = (b) => b;

const server = new grpc.Server();
server.addService(
  {
    Check: {
      path: CHECK_PATH,
      requestStream: false,
      responseStream: false,
      requestDeserialize: identity,
      requestSerialize: identity,
      responseSerialize: () => OK,
      responseDeserialize: identity,
    },
  },
  { Check: (_call, callback) => callback(null, OK) },
);
server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) throw err;
  serveChild({ port }, () => new Promise((resolve) => server.tryShutdown(() => resolve())));
});
