// The floor plus the protobuf work every real answer needs: decode the
// CheckRequest (proto-loader, as our server does) and encode a real allow
// CheckResponse (with its decision id and policy version), and nothing else.
// Between this and the floor is the codec; between this and ours, our logic.
import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { decisionToCheckResponse } from '../../dist/envoy/check-response.js';
import { authorizationService } from '../../dist/envoy/protos.js';
import { serveChild } from './child.mjs';

const decision = {
  kind: 'allow',
  reason: 'allowed',
  status: 200,
  message: 'allowed',
  policies: ['svc-002-read-prev'],
  headers: {},
  decisionId: '',
  version: 'dir-3f6ef914d853',
};
const server = new grpc.Server();
server.addService(authorizationService().service, {
  Check: (_call, callback) => callback(null, decisionToCheckResponse({ ...decision, decisionId: randomUUID() })),
});
server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) throw err;
  serveChild({ port }, () => new Promise((resolve) => server.tryShutdown(() => resolve())));
});
