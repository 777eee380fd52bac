/**
 * One canonical form for every name a request can give its target, so
 * `Service::"orders"` (a forbid, a lockdown) catches every way of writing it.
 *
 * Hosts: lower-case, port removed, trailing dot removed (`Orders.Shop.:8080` → `orders.shop`).
 * Kubernetes names: within a known namespace NS, `orders`, `orders.NS`,
 * `orders.NS.svc` and `orders.NS.svc.<cluster domain>` all name `orders`.
 */
import { isIP } from 'node:net';

export const DEFAULT_CLUSTER_DOMAIN = 'cluster.local';

/** A Host / :authority / SNI value in canonical form ("" stays ""). */
export function canonicalHost(raw: string): string {
  let host = stripPort(raw.trim().toLowerCase());
  // A fully qualified name ends with a dot; `orders.` and `orders` are one name.
  while (host.endsWith('.')) host = host.slice(0, -1);
  return host;
}

function stripPort(host: string): string {
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    return end === -1 ? host : host.slice(1, end);
  }
  const colon = host.indexOf(':');
  // More than one colon: a bare IPv6 literal, which has no port.
  if (colon === -1 || host.indexOf(':', colon + 1) !== -1) return host;
  return host.slice(0, colon);
}

/**
 * The Kubernetes service a canonical host names in `namespace`, or undefined
 * when the host is not one of that namespace's forms (another namespace, an
 * external name, an IP address).
 */
export function kubernetesServiceName(
  host: string,
  namespace: string,
  clusterDomain: string = DEFAULT_CLUSTER_DOMAIN,
): string | undefined {
  if (!host || isIP(host) !== 0) return undefined;
  const labels = host.split('.');
  const name = labels[0];
  if (!name) return undefined;
  if (labels.length === 1) return name;
  if (labels[1] !== namespace) return undefined;
  if (labels.length === 2) return name;
  if (labels[2] !== 'svc') return undefined;
  if (labels.length === 3) return name;
  return labels.slice(3).join('.') === clusterDomain ? name : undefined;
}

/** Every form of `name` in `namespace` except the bare name: `name.ns`, `name.ns.svc`, `name.ns.svc.<domain>`. */
export function kubernetesForms(
  name: string,
  namespace: string,
  clusterDomain: string = DEFAULT_CLUSTER_DOMAIN,
): string[] {
  return [`${name}.${namespace}`, `${name}.${namespace}.svc`, `${name}.${namespace}.svc.${clusterDomain}`];
}
