// Usage: node bench/eval-requests.mjs 50000 > /tmp/requests.jsonl
// Requests for the example bundle, shaped as its schema's RequestContext.
const n = Number(process.argv[2] ?? 50000);
const principals = [
  'spiffe://cluster.local/ns/shop/sa/frontend',
  'spiffe://cluster.local/ns/shop/sa/orders',
  'spiffe://cluster.local/ns/ops/sa/admin-console',
  'spiffe://cluster.local/ns/shop/sa/ingress',
];
const services = ['orders', 'payments', 'frontend', 'unknown'];
const methods = ['GET', 'POST', 'DELETE', 'HEAD'];
const paths = ['/orders', '/orders/17', '/payments/charge', '/payments/9/status', '/healthz', '/admin/x', '/public/a'];
const out = [];
for (let i = 0; i < n; i++) {
  const p = principals[i % 4],
    s = services[(i >> 2) % 4],
    m = methods[(i >> 4) % 4],
    path = paths[(i * 7) % paths.length] + (i % 50 === 0 ? `/${i}` : '');
  out.push(
    JSON.stringify({
      principal: { type: 'Workload', id: p },
      action: { type: 'Action', id: m },
      resource: { type: 'Service', id: s },
      context: {
        method: m,
        path,
        rawPath: path,
        query: {},
        bodyTruncated: false,
        host: s,
        scheme: 'http',
        protocol: 'HTTP/1.1',
        headers: { 'x-request-id': `r-${i}` },
        source: { principal: p, ip: { __extn: { fn: 'ip', arg: `10.0.${i % 4}.7` } }, port: 40000, lists: [] },
        destination: { principal: `spiffe://cluster.local/ns/shop/sa/${s}`, port: 8080 },
        time: { __extn: { fn: 'datetime', arg: '2026-11-30T10:00:00Z' } },
        contextExtensions: {},
        load: 0,
        hour: 10,
        weekday: 1,
        mode: 'normal',
      },
    }),
  );
}
process.stdout.write(out.join('\n') + '\n');
