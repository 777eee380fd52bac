/**
 * Traces: the real server exports OTLP/HTTP to a receiver on loopback; each
 * Check's span is a child of the trace context Envoy put in the request
 * (traceparent or b3) and carries the decision.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectAuthz, type AuthzClient } from '../support/grpc-client.js';
import { copyExamplePolicies, removeDir } from '../support/policy-dir.js';
import { FRONTEND, istioRequest } from '../support/requests.js';
import { startTestServer, type TestServer } from '../support/start-server.js';

interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  status?: { code?: number };
  attributes: Record<string, unknown>;
  service: string;
}

/** The parts of an OTLP/JSON attribute value these tests read. */
interface OtlpValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: string | number;
  doubleValue?: number;
  arrayValue?: { values?: OtlpValue[] };
}
type OtlpAttributes = { key: string; value: OtlpValue }[];

/** The parts of an OTLP/JSON ExportTraceServiceRequest these tests read. */
interface OtlpTraces {
  resourceSpans?: {
    resource?: { attributes?: OtlpAttributes };
    scopeSpans?: { spans?: (Omit<ReceivedSpan, 'attributes' | 'service'> & { attributes?: OtlpAttributes })[] }[];
  }[];
}

/** An OTLP/HTTP traces receiver (JSON encoding, what @opentelemetry/exporter-trace-otlp-http sends). */
class OtlpReceiver {
  readonly spans: ReceivedSpan[] = [];
  readonly contentTypes: string[] = [];
  private server!: Server;

  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.contentTypes.push(String(req.headers['content-type']));
        if (req.method === 'POST' && req.url === '/v1/traces')
          this.take(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  private take(body: OtlpTraces): void {
    for (const rs of body.resourceSpans ?? []) {
      const service = attributesOf(rs.resource?.attributes)['service.name'] as string;
      for (const ss of rs.scopeSpans ?? []) {
        for (const s of ss.spans ?? []) {
          this.spans.push({
            traceId: s.traceId,
            spanId: s.spanId,
            parentSpanId: s.parentSpanId || undefined,
            name: s.name,
            kind: s.kind,
            status: s.status,
            attributes: attributesOf(s.attributes),
            service,
          });
        }
      }
    }
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** OTLP JSON key/value list → plain object. */
function attributesOf(list: OtlpAttributes | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const { key, value } of list ?? []) out[key] = attributeValue(value);
  return out;
}

function attributeValue(v: OtlpValue): unknown {
  if ('stringValue' in v) return v.stringValue;
  if ('boolValue' in v) return v.boolValue;
  if ('intValue' in v) return Number(v.intValue);
  if ('doubleValue' in v) return v.doubleValue;
  if ('arrayValue' in v) return (v.arrayValue?.values ?? []).map(attributeValue);
  return undefined;
}

const W3C_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const W3C_PARENT = '00f067aa0ba902b7';
const B3_TRACE = '80f198ee56343ba864fe8b2a57d3eff7';
const B3_PARENT = 'e457b5a2e4d86bd1';

describe('OpenTelemetry traces to an OTLP receiver on loopback', () => {
  let receiver: OtlpReceiver;
  let server: TestServer;
  let client: AuthzClient;
  let dir: string;

  beforeAll(async () => {
    receiver = new OtlpReceiver();
    const endpoint = await receiver.start();
    dir = copyExamplePolicies();
    server = await startTestServer({ policies: dir, otelEndpoint: endpoint });
    client = connectAuthz(server.grpcPort);
    await client.check(
      istioRequest({
        principal: FRONTEND,
        path: '/orders/17',
        ext: { service: 'orders' },
        headers: { traceparent: `00-${W3C_TRACE}-${W3C_PARENT}-01` },
      }),
    );
    await client.check(
      istioRequest({ path: '/orders/17', ext: { service: 'orders' }, headers: { b3: `${B3_TRACE}-${B3_PARENT}-1` } }),
    );
    await client.check(
      istioRequest({
        path: '/orders/17',
        ext: { service: 'orders' },
        headers: { 'x-b3-traceid': B3_TRACE, 'x-b3-spanid': 'a2fb4a1d1a96d312', 'x-b3-sampled': '1' },
      }),
    );
    await client.check(istioRequest({ principal: FRONTEND, path: '/orders/18', ext: { service: 'orders' } }));
    // Envoy decided not to sample this trace: we follow its decision.
    await client.check(
      istioRequest({
        principal: FRONTEND,
        path: '/orders/19',
        ext: { service: 'orders' },
        headers: { traceparent: `00-${'1'.repeat(32)}-${'2'.repeat(16)}-00` },
      }),
    );
    await server.tracing!.flush();
  });

  afterAll(async () => {
    client?.close();
    await server?.close();
    await receiver?.close();
    removeDir(dir);
  });

  const checkSpans = () => receiver.spans.filter((s) => s.name === 'authz.check');

  it('a Check with a traceparent yields a server span whose parent is the caller span, with the decision attributes', () => {
    const span = checkSpans().find((s) => s.traceId === W3C_TRACE)!;
    expect(span).toBeDefined();
    expect(span.parentSpanId).toBe(W3C_PARENT);
    expect(span.kind).toBe(2); // SPAN_KIND_SERVER
    expect(span.service).toBe('cedar-envoy-authz');
    expect(span.attributes).toMatchObject({
      'authz.decision': 'allow',
      'authz.reason': 'allowed',
      'authz.http_status': 200,
      'authz.determining_policies': ['orders-frontend-access'],
      'authz.cache_hit': false,
      'authz.principal_type': 'Workload',
      'authz.service': 'orders',
      'authz.mode': 'normal',
    });
    expect(span.attributes['authz.policy_version']).toMatch(/^dir-/);
    expect(span.attributes['authz.decision_id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('b3 single-header and multi-header contexts are joined too (Istio/Zipkin tracers)', () => {
    const b3 = checkSpans().filter((s) => s.traceId === B3_TRACE);
    expect(b3.map((s) => s.parentSpanId).sort()).toEqual(['a2fb4a1d1a96d312', B3_PARENT]);
    for (const s of b3)
      expect(s.attributes).toMatchObject({
        'authz.decision': 'deny',
        'authz.reason': 'policy_forbid',
        'authz.http_status': 401,
        'authz.determining_policies': ['orders-no-anonymous'],
        'authz.principal_type': 'Anonymous',
      });
  });

  it('a Check without trace headers starts its own trace; one Envoy did not sample is not exported', () => {
    const roots = checkSpans().filter((s) => s.traceId !== W3C_TRACE && s.traceId !== B3_TRACE);
    expect(roots).toHaveLength(1);
    expect(roots[0].parentSpanId).toBeUndefined();
    expect(checkSpans().some((s) => s.traceId === '1'.repeat(32))).toBe(false);
  });

  it('spans carry no header values, paths or principals', () => {
    const text = JSON.stringify(checkSpans());
    expect(text).not.toContain('/orders/17');
    expect(text).not.toContain(FRONTEND);
    expect(text).not.toContain('curl/8.5.0');
  });

  it('the bundle activation at start is a span of its own', () => {
    const activation = receiver.spans.find((s) => s.name === 'authz.bundle.activate')!;
    expect(activation).toBeDefined();
    expect(activation.parentSpanId).toBeUndefined();
    expect(activation.attributes['authz.policy_version']).toMatch(/^dir-/);
    expect(activation.attributes['authz.policies']).toBeGreaterThan(0);
  });
});

describe('tracing is off unless configured', () => {
  it('no endpoint and no OTEL_EXPORTER_OTLP_* variable: the server holds no tracer', async () => {
    const dir = copyExamplePolicies();
    const server = await startTestServer({ policies: dir });
    try {
      expect(server.tracing).toBeUndefined();
    } finally {
      await server.close();
      removeDir(dir);
    }
  });
});
