/**
 * Admin HTTP: liveness, readiness, Prometheus metrics and the active bundle.
 * Extra routes (added by later features) register through `route()`.
 */
import http from 'node:http';
import { listenOnPort } from './listen-port.js';
import type { AuthzMetrics } from '../observability/metrics.js';

export type AdminRoute = (
  req: http.IncomingMessage,
  url: URL,
) => Promise<{ status: number; body: unknown; contentType?: string }>;

export interface AdminServerOptions {
  metrics: AuthzMetrics;
  /** Logs what a route threw, or a request the server could not parse; the answer is a 400 or 500. */
  onError?: (err: unknown, detail: { url?: string }) => void;
  isReady: () => boolean;
  readinessDetail: () => Record<string, unknown>;
}

export class AdminServer {
  private readonly server: http.Server;
  private readonly routes = new Map<string, AdminRoute>();

  constructor(private readonly options: AdminServerOptions) {
    this.server = http.createServer((req, res) => {
      // dispatch catches everything it can; this catches what escapes it (a throw while writing the answer).
      this.dispatch(req, res).catch((err: unknown) => this.fail(res, 500, err, req.url));
    });
    // Bad request lines and broken sockets: answer 400 if the socket can still take it, never throw.
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
      if (socket.writable && err.code !== 'ECONNRESET')
        socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      else socket.destroy();
    });
    this.route('/healthz', async () => ({ status: 200, body: { status: 'ok' } }));
    this.route('/readyz', async () => {
      const ready = this.options.isReady();
      return { status: ready ? 200 : 503, body: { ready, ...this.options.readinessDetail() } };
    });
    this.route('/metrics', async () => ({
      status: 200,
      body: await this.options.metrics.registry.metrics(),
      contentType: this.options.metrics.registry.contentType,
    }));
  }

  route(path: string, handler: AdminRoute): void {
    this.routes.set(path, handler);
  }

  private async dispatch(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    let url: URL;
    try {
      // A path such as "//[" is a valid request line but not a valid URL: the WHATWG parser throws.
      url = new URL(req.url ?? '/', 'http://admin');
    } catch {
      res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'bad request path' }));
      return;
    }
    const handler = this.routes.get(url.pathname);
    if (!handler) {
      res
        .writeHead(404, { 'content-type': 'application/json' })
        .end(JSON.stringify({ error: 'not found', routes: [...this.routes.keys()] }));
      return;
    }
    try {
      const out = await handler(req, url);
      const body = typeof out.body === 'string' ? out.body : JSON.stringify(out.body, null, 2);
      res
        .writeHead(out.status, {
          'content-type': out.contentType ?? (typeof out.body === 'string' ? 'text/plain' : 'application/json'),
        })
        .end(body);
    } catch (err) {
      this.fail(res, 500, err, req.url);
    }
  }

  private fail(res: http.ServerResponse, status: number, err: unknown, url: string | undefined): void {
    this.options.onError?.(err, { url: url?.slice(0, 200) });
    if (res.headersSent) {
      res.destroy();
      return;
    }
    res
      .writeHead(status, { 'content-type': 'application/json' })
      .end(JSON.stringify({ error: err instanceof Error ? err.message : 'internal error' }));
  }

  listen(host: string, port: number): Promise<number> {
    return listenOnPort(this.server, host, port);
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.closeAllConnections();
      this.server.close(() => resolve());
    });
  }
}
