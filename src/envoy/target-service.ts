/**
 * Which service a request is for: the Cedar resource `Service::"<name>"`.
 *
 * The target must come from what the mesh vouches for, not from what the
 * caller typed. In order:
 *
 *   1. `context_extensions.service`: set per route by the operator (Envoy config).
 *   2. the destination's identity (`destination.principal`, the certificate of
 *      the Envoy asking us), when it is a mesh identity: the `services:` entry
 *      listing it, else (Istio's one-account-per-service convention) its
 *      service account. A Host naming another known service is a
 *      `host_mismatch` deny: someone addressed payments' pod as `orders`.
 *   3. the Host (SNI for network checks), only where the host is what routes
 *      the request: a destination identity listed in `gateways:` (ingress
 *      gateways), or no mesh identity at all and `frontProxy: true` (Envoy at
 *      the edge; the default, as envoy/envoy.yaml is). With `frontProxy: false`
 *      a check without a mesh identity is denied (`no_destination_identity`).
 *
 * The directory is built once per bundle (its `services:` map, gateways and
 * cluster domain); resolution is a few map lookups per request.
 */
import { canonicalHost, DEFAULT_CLUSTER_DOMAIN, kubernetesForms, kubernetesServiceName } from './service-names.js';
import { parseSpiffeId, SPIFFE_SCHEME } from '../identity/spiffe-id.js';

export interface ServiceEntry {
  /** Destination identities (SPIFFE ids, or any exact principal) of the service's workloads. */
  identities: readonly string[];
  /** Other host names that reach it (external names, ServiceEntry hosts). */
  hosts: readonly string[];
}

/** The bundle.yaml settings that decide targets (bundle-settings.ts validates them). */
export interface TargetSettings {
  services: Readonly<Record<string, ServiceEntry>>;
  /** Destination identities of Envoys for which the Host decides (ingress gateways). */
  gateways: readonly string[];
  /** Whether the Host decides when a check carries no mesh identity (Envoy at the edge). */
  frontProxy: boolean;
  clusterDomain: string;
}

export const DEFAULT_TARGET_SETTINGS: TargetSettings = Object.freeze({
  services: {},
  gateways: [],
  frontProxy: true,
  clusterDomain: DEFAULT_CLUSTER_DOMAIN,
});

export type TargetVia = 'context_extensions' | 'identity' | 'host' | 'address';

export interface HostMismatch {
  /** The destination identity and the service it names. */
  identity: string;
  service: string;
  /** The host the caller sent and the service it names. */
  host: string;
  hostService: string;
}

export type TargetResult =
  | { ok: true; service: string; via: TargetVia }
  | { ok: false; reason: 'host_mismatch'; message: string; service: string; mismatch: HostMismatch }
  | { ok: false; reason: 'no_destination_identity' | 'malformed_request'; message: string };

export interface TargetQuery {
  kind: 'http' | 'network';
  /** context_extensions["service"] ("" when unset). */
  extensionService: string;
  destinationPrincipal: string;
  /** Canonical host (HTTP) or SNI (network); "" when none. */
  host: string;
  destinationIp?: string;
}

export class ServiceDirectory {
  static readonly DEFAULT = new ServiceDirectory(DEFAULT_TARGET_SETTINGS);

  private readonly byIdentity = new Map<string, string>();
  private readonly byHost = new Map<string, string>();
  private readonly gateways: ReadonlySet<string>;
  /** Problems in the settings (an identity or host claimed twice); bundle.yaml refuses a set with any. */
  readonly problems: string[] = [];

  /**
   * @param isKnownService whether the policy set otherwise knows a service
   *   (an entity, a policy naming it); used only to tell a host that names a
   *   service from one that is just a name.
   */
  constructor(
    readonly settings: TargetSettings,
    private readonly isKnownService: (name: string) => boolean = () => false,
  ) {
    this.gateways = new Set(settings.gateways);
    for (const [service, entry] of Object.entries(settings.services)) {
      this.claimHost(service, service, `services.${service}`);
      for (const [n, identity] of entry.identities.entries()) {
        const other = this.byIdentity.get(identity);
        if (other !== undefined && other !== service)
          this.problems.push(`services.${service}.identities.${n}: ${identity} is already an identity of ${other}`);
        else this.byIdentity.set(identity, service);
        if (this.gateways.has(identity))
          this.problems.push(`services.${service}.identities.${n}: ${identity} is also listed in gateways`);
        const id = parseSpiffeId(identity);
        if (id)
          for (const form of kubernetesForms(service, id.namespace, settings.clusterDomain))
            this.claimHost(form, service, `services.${service}.identities.${n}`);
      }
      for (const [n, host] of entry.hosts.entries())
        this.claimHost(canonicalHost(host), service, `services.${service}.hosts.${n}`);
    }
  }

  private claimHost(host: string, service: string, field: string): void {
    const other = this.byHost.get(host);
    if (other !== undefined && other !== service) this.problems.push(`${field}: host "${host}" already names ${other}`);
    else this.byHost.set(host, service);
  }

  /** The service a name given by the operator (context_extensions, `lockdown --service`) stands for. */
  serviceOfName(name: string): string {
    const host = canonicalHost(name);
    return this.byHost.get(host) ?? host;
  }

  /** The service a canonical host names, reducing Kubernetes forms within `namespace` when one is known. */
  serviceOfHost(host: string, namespace?: string): string {
    const mapped = this.byHost.get(host);
    if (mapped !== undefined) return mapped;
    if (namespace !== undefined) {
      const short = kubernetesServiceName(host, namespace, this.settings.clusterDomain);
      if (short !== undefined) return this.byHost.get(short) ?? short;
    }
    return host;
  }

  /**
   * The service a destination identity names, with its namespace; undefined
   * when the principal is no mesh identity (absent, or a TLS edge's DNS name
   * not listed in `services:`).
   */
  serviceOfIdentity(principal: string): { service: string; namespace?: string } | undefined {
    if (!principal) return undefined;
    const id = parseSpiffeId(principal);
    const listed = this.byIdentity.get(principal);
    if (listed !== undefined) return { service: listed, namespace: id?.namespace };
    if (id) {
      // The map names this service by other identities: an unlisted workload
      // with the same account name does not get to be it.
      if (Object.hasOwn(this.settings.services, id.serviceAccount))
        return { service: principal, namespace: id.namespace };
      return { service: id.serviceAccount, namespace: id.namespace };
    }
    // A SPIFFE id of another shape is still vouched for: its whole text names the target.
    if (principal.startsWith(SPIFFE_SCHEME)) return { service: principal };
    return undefined;
  }

  isGateway(principal: string): boolean {
    return principal !== '' && this.gateways.has(principal);
  }

  /** Whether a service name is known: a `services:` entry, or (per the set) an entity or a policy naming it. */
  isKnown(service: string): boolean {
    return Object.hasOwn(this.settings.services, service) || this.isKnownService(service);
  }

  resolve(q: TargetQuery): TargetResult {
    if (q.extensionService)
      return { ok: true, service: this.serviceOfName(q.extensionService), via: 'context_extensions' };
    const principal = q.destinationPrincipal;
    if (this.isGateway(principal)) return this.byRoutingHost(q, `the gateway ${principal}`);
    const identity = this.serviceOfIdentity(principal);
    if (identity) {
      if (q.host) {
        const hostService = this.serviceOfHost(q.host, identity.namespace);
        if (hostService !== identity.service && this.isKnown(hostService)) {
          const mismatch: HostMismatch = { identity: principal, service: identity.service, host: q.host, hostService };
          return {
            ok: false,
            reason: 'host_mismatch',
            service: identity.service,
            mismatch,
            message: `the ${q.kind === 'network' ? 'SNI' : 'host'} "${q.host}" names ${hostService}, but the destination ${principal} is ${identity.service}`,
          };
        }
      }
      return { ok: true, service: identity.service, via: 'identity' };
    }
    if (!this.settings.frontProxy) {
      return {
        ok: false,
        reason: 'no_destination_identity',
        message: principal
          ? `the destination ${principal} is neither a mesh identity, a services: identity nor a gateway, and bundle.yaml sets frontProxy: false`
          : 'the check carries no destination identity and no context_extensions["service"], and bundle.yaml sets frontProxy: false',
      };
    }
    return this.byRoutingHost(q, 'a front proxy');
  }

  /** The Host (or SNI) decides: it is what routed the request here. */
  private byRoutingHost(q: TargetQuery, where: string): TargetResult {
    if (q.host) return { ok: true, service: this.serviceOfHost(q.host), via: 'host' };
    if (q.kind === 'network') {
      if (q.destinationPrincipal) return { ok: true, service: q.destinationPrincipal, via: 'identity' };
      if (q.destinationIp) return { ok: true, service: q.destinationIp, via: 'address' };
      return {
        ok: false,
        reason: 'malformed_request',
        message: 'network check names no destination (no SNI, principal or address)',
      };
    }
    return {
      ok: false,
      reason: 'malformed_request',
      message: `attributes.request.http.host is missing and no context_extensions["service"] is set (the host names the service at ${where})`,
    };
  }
}
