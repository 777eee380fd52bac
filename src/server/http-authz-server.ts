/**
 * Envoy's HTTP ext_authz service on its own port (`--http-listen`): each HTTP
 * request is one check, answered by the same CheckHandler as the gRPC service
 * (http-check-request.ts and http-check-response.ts translate). Only wiring.
 */
import http from 'node:http';
import { listenOnPort } from './listen-port.js';
import { checkResponseToHttp } from '../envoy/http-check-response.js';
import { httpCheckToCheckRequest, type HttpCheckSettings } from '../envoy/http-check-request.js';
import type { CheckHandler } from './check-handler.js';

/**
 * Envoy only sends a body with `with_request_body` (bounded by its own
 * max_request_bytes); we do not decide on it, so it is read and dropped, up to
 * this much. A longer one is refused (413) rather than buffered.
 */
export const MAX_HTTP_CHECK_BODY_BYTES = 8 * 1024 * 1024;
/** Envoy sets this on the check request from the ext_authz timeout: our deadline, as the gRPC deadline is. */
const EXPECTED_TIMEOUT_HEADER = 'x-envoy-expected-rq-timeout-ms';

export class HttpAuthzServer {
  private readonly server: http.Server;

  constructor(handler: CheckHandler, settings: HttpCheckSettings) {
    this.server = http.createServer((req, res) => {
      let received = 0;
      let refused = false;
      req.on('data', (chunk: Buffer) => {
        received += chunk.length;
        if (received > MAX_HTTP_CHECK_BODY_BYTES && !refused) {
          refused = true;
          res.writeHead(413, { 'content-type': 'application/json', connection: 'close' });
          res.end(JSON.stringify({ decision: 'deny', message: 'the check request body is too large' }));
          req.destroy();
        }
      });
      req.on('end', () => {
        if (refused) return;
        const timeout = Number(req.headers[EXPECTED_TIMEOUT_HEADER]);
        const deadline = Number.isFinite(timeout) && timeout > 0 ? Date.now() + timeout : undefined;
        const request = httpCheckToCheckRequest(
          { method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers },
          settings,
          Date.now(),
        );
        const send = (answer: ReturnType<typeof checkResponseToHttp>): void => {
          res.writeHead(answer.status, { ...answer.headers, 'content-length': Buffer.byteLength(answer.body) });
          res.end(answer.body);
        };
        const out = handler.handle(request, deadline);
        if (out instanceof Promise) {
          out.then(
            (r) => send(checkResponseToHttp(r)),
            () =>
              send({
                status: 503,
                headers: { 'content-type': 'application/json' },
                body: JSON.stringify({ decision: 'deny', message: 'the check failed' }),
              }),
          );
        } else send(checkResponseToHttp(out));
      });
    });
  }

  listen(host: string, port: number): Promise<number> {
    return listenOnPort(this.server, host, port);
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeIdleConnections();
    });
  }
}
