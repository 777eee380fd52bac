// The node:http2 floor: a bare node:http2 server answering Check with a
// constant, pre-encoded OK (trailers included), never decoding the request.
// What `--transport http2` costs beyond this is ours.
import http2 from 'node:http2';
import { authorizationService } from '../../dist/envoy/protos.js';
import { serveChild } from './child.mjs';

const OK = authorizationService().service.Check.responseSerialize({ status: { code: 0 }, ok_response: {} });
const FRAME = Buffer.concat([Buffer.from([0, 0, 0, 0, 0]), OK]);
FRAME.writeUInt32BE(OK.length, 1);

const server = http2.createServer();
server.on('stream', (stream) => {
  stream.on('error', () => {});
  stream.on('data', () => {});
  stream.on('end', () => {
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    stream.end(FRAME);
  });
});
server.listen(0, '127.0.0.1', () => {
  serveChild({ port: server.address().port }, () => new Promise((resolve) => server.close(() => resolve())));
});
