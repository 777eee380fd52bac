/**
 * Admin HTTP: liveness, readiness, Prometheus metrics and the active bundle.
 * Extra routes (added by later features) register through `route()`.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AuthzMetrics } from '../observability/metrics.js';

export type AdminRoute = (req: http.IncomingMessage, url: URL) => Promise<{ status: number; body: unknown; contentType?: string }>;

export interface AdminServerOptions {
  metrics: AuthzMetrics;
  isReady: () => boolean;
  readinessDetail: () => Record<string, unknown>;
}

export class AdminServer {
  private readonly server: http.Server;
  private readonly routes = new Map<string, AdminRoute>();

  constructor(private readonly options: AdminServerOptions) {
    this.server = http.createServer((req, res) => void this.dispatch(req, res));
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
    const url = new URL(req.url ?? '/', 'http://admin');
    const handler = this.routes.get(url.pathname);
    if (!handler) {
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'not found', routes: [...this.routes.keys()] }));
      return;
    }
    try {
      const out = await handler(req, url);
      const body = typeof out.body === 'string' ? out.body : JSON.stringify(out.body, null, 2);
      res.writeHead(out.status, { 'content-type': out.contentType ?? (typeof out.body === 'string' ? 'text/plain' : 'application/json') }).end(body);
    } catch (err) {
      res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ error: (err as Error).message }));
    }
  }

  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve((this.server.address() as AddressInfo).port);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.closeAllConnections();
      this.server.close(() => resolve());
    });
  }
}
