/**
 * Metrics of the identity and context stage, registered on the server's
 * registry: how bearer tokens were resolved (bounded `result` label) and the
 * load value policies see.
 */
import client from 'prom-client';
import type { JwtResult } from '../context/jwt-identity.js';
import type { LoadSource } from '../context/server-load.js';

const JWT_RESULTS: JwtResult[] = ['verified', 'cached', 'upstream', 'rejected', 'unavailable'];

export class ContextMetrics {
  readonly jwt: client.Counter<'result'>;
  readonly load: client.Gauge;

  constructor(registry: client.Registry, loadSource: LoadSource) {
    this.jwt = new client.Counter({
      name: 'authz_jwt_results_total',
      help: 'Requests carrying end-user identity, by how it was resolved: verified (first sight), cached, upstream (Envoy-verified payload), rejected (401), unavailable (keys could not be fetched).',
      labelNames: ['result'] as const,
      registers: [registry],
    });
    for (const result of JWT_RESULTS) this.jwt.inc({ result }, 0);
    this.load = new client.Gauge({
      // Prometheus convention: a ratio 0–1 named _ratio (policies see the same value as a 0–100 percentage).
      name: 'authz_load_ratio',
      help: 'Event-loop utilisation of this server over the load window, 0 to 1 (policies see it x100 as context.load).',
      registers: [registry],
      collect() {
        this.set(loadSource.current() / 100);
      },
    });
  }
}
