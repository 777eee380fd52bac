/**
 * OpenTelemetry traces: one span per Check, a child of the trace Envoy
 * started (W3C `traceparent` or B3 headers of the request), and one span per
 * bundle activation. Off unless an OTLP endpoint is configured.
 *
 * Why the span is recorded after the answer, with the start time the handler
 * took anyway: the pipeline stays synchronous and knows nothing of tracing, no
 * async context manager is installed, and with tracing off the whole cost is
 * one `undefined` check per Check (the handler holds no tracer).
 *
 * The provider is never registered globally: nothing else in the process
 * (grpc-js, the AWS SDK) starts emitting spans because we trace Checks.
 */
import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  TraceFlags,
  type Attributes,
  type Context,
  type TextMapGetter,
  type TextMapPropagator,
  type Tracer,
} from '@opentelemetry/api';
import { CompositePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { B3Propagator } from '@opentelemetry/propagator-b3';
import { detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';

export const DEFAULT_SERVICE_NAME = 'cedar-envoy-authz';
const TRACER_NAME = 'cedar-envoy-authz';

/** What a Check span says: bounded values, never a token, header value or path. */
export interface CheckSpanFields {
  /** performance.now() when the Check arrived, and when it was answered. */
  startedAt: number;
  endedAt: number;
  /** Lower-case request headers (only the trace headers are read). */
  headers: Record<string, string> | undefined;
  outcome: string;
  reason: string;
  status: number;
  version: string | null;
  policies: readonly string[];
  cache: 'hit' | 'miss' | 'uncacheable' | undefined;
  principalType: string | undefined;
  service: string | undefined;
  mode: string | undefined;
  decisionId: string;
  /** The decision was an evaluation error (fail mode answered): the span is marked as an error. */
  failed: boolean;
}

export interface TracingOptions {
  /** OTLP/HTTP base URL (http://collector:4318); traces go to <endpoint>/v1/traces. Absent: the OTEL_EXPORTER_OTLP_* variables. */
  endpoint?: string;
  env?: NodeJS.ProcessEnv;
}

/** True when the config or the standard OTEL_* variables ask for traces. */
export function tracingRequested(endpoint: string | undefined, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return false;
  if (env.OTEL_TRACES_EXPORTER?.trim().toLowerCase() === 'none') return false;
  return !!(endpoint || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT);
}

/** `http://host:4318` or `http://host:4318/` → `http://host:4318/v1/traces` (the OTLP/HTTP traces path). */
export function tracesUrl(endpoint: string): string {
  return `${endpoint.replace(/\/+$/, '')}/v1/traces`;
}

const headerGetter: TextMapGetter<Record<string, string>> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => carrier[key.toLowerCase()],
};

export class Tracing {
  private readonly tracer: Tracer;
  private readonly propagator: TextMapPropagator;

  private constructor(
    private readonly provider: NodeTracerProvider,
    /** The sampler follows the caller's decision (parentbased_*, the default): an unsampled parent needs no span built. */
    private readonly followsParent: boolean,
  ) {
    this.tracer = provider.getTracer(TRACER_NAME);
    // traceparent (Envoy's default with the OpenTelemetry tracer) and b3 (Zipkin tracer, Istio's default), single or multi header.
    this.propagator = new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new B3Propagator()] });
  }

  /** A Tracing when traces are asked for, else undefined (and nothing is loaded into the hot path). */
  static fromOptions(options: TracingOptions): Tracing | undefined {
    const env = options.env ?? process.env;
    if (!tracingRequested(options.endpoint, env)) return undefined;
    const serviceName = env.OTEL_SERVICE_NAME?.trim() || DEFAULT_SERVICE_NAME;
    const resource = resourceFromAttributes({ 'service.name': serviceName }).merge(
      detectResources({ detectors: [envDetector] }),
    );
    // Without an endpoint the exporter reads OTEL_EXPORTER_OTLP_TRACES_ENDPOINT / OTEL_EXPORTER_OTLP_ENDPOINT (and _HEADERS) itself.
    const exporter = new OTLPTraceExporter(options.endpoint ? { url: tracesUrl(options.endpoint) } : {});
    // Batching (OTEL_BSP_* honoured) keeps export off the request path; the sampler comes from OTEL_TRACES_SAMPLER
    // (default parentbased_always_on: Envoy's sampling decision, carried in traceparent, is followed).
    const provider = new NodeTracerProvider({ resource, spanProcessors: [new BatchSpanProcessor(exporter)] });
    const sampler = env.OTEL_TRACES_SAMPLER?.trim().toLowerCase();
    return new Tracing(provider, !sampler || sampler.startsWith('parentbased_'));
  }

  /** The parent context carried by the request's trace headers (ROOT when none or malformed). */
  parentOf(headers: Record<string, string> | undefined): Context {
    if (!headers) return ROOT_CONTEXT;
    return this.propagator.extract(ROOT_CONTEXT, headers, headerGetter);
  }

  /** Record the span of one answered Check. */
  recordCheck(f: CheckSpanFields): void {
    const parent = this.parentOf(f.headers);
    if (this.followsParent) {
      // Envoy chose not to sample this trace: the sampler would drop the span, so skip building it.
      const sc = trace.getSpanContext(parent);
      if (sc && (sc.traceFlags & TraceFlags.SAMPLED) === 0) return;
    }
    const attributes: Attributes = {
      'authz.decision': f.outcome,
      'authz.reason': f.reason,
      'authz.http_status': f.status,
      'authz.decision_id': f.decisionId,
      'authz.cache_hit': f.cache === 'hit',
    };
    if (f.version !== null) attributes['authz.policy_version'] = f.version;
    if (f.policies.length > 0) attributes['authz.determining_policies'] = [...f.policies];
    if (f.principalType) attributes['authz.principal_type'] = f.principalType;
    if (f.service) attributes['authz.service'] = f.service;
    if (f.mode) attributes['authz.mode'] = f.mode;
    const span = this.tracer.startSpan(
      'authz.check',
      { kind: SpanKind.SERVER, startTime: f.startedAt, attributes },
      parent,
    );
    if (f.failed) span.setStatus({ code: SpanStatusCode.ERROR, message: f.reason });
    span.end(f.endedAt);
  }

  /** A span for one bundle activation (compile and swap), as a root span: no request caused it. */
  recordActivation(version: string, previous: string | null, policies: number, compileMs: number): void {
    const now = performance.now();
    const span = this.tracer.startSpan(
      'authz.bundle.activate',
      {
        kind: SpanKind.INTERNAL,
        startTime: Math.max(0, now - compileMs),
        attributes: {
          'authz.policy_version': version,
          'authz.previous_version': previous ?? '',
          'authz.policies': policies,
        },
      },
      ROOT_CONTEXT,
    );
    span.end(now);
  }

  /** A refused bundle: an error span, so the trace backend shows why the old set kept serving. */
  recordRefusedActivation(version: string | null, message: string): void {
    const span = this.tracer.startSpan(
      'authz.bundle.activate',
      { kind: SpanKind.INTERNAL, attributes: { 'authz.policy_version': version ?? '' } },
      ROOT_CONTEXT,
    );
    span.setStatus({ code: SpanStatusCode.ERROR, message });
    span.end();
  }

  /** Export what is buffered (tests, and shutdown). */
  async flush(): Promise<void> {
    await this.provider.forceFlush();
  }

  async shutdown(): Promise<void> {
    await this.provider.shutdown();
  }
}
