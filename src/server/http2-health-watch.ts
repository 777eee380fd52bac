/**
 * grpc.health.v1.Health/Watch on the http2 transport
 * (https://github.com/grpc/grpc/blob/master/doc/health-checking.md): the
 * current status at once (SERVICE_UNKNOWN for a service we do not serve,
 * without ending the call), then one message each time the status changes.
 * A Watch ends with status OK when the server shuts down or its connection
 * is sent GOAWAY, so a client reconnects and watches again.
 */
import type http2 from 'node:http2';
import type { ServingStatus } from './grpc-server.js';
import { GrpcStatus } from './grpc-framing.js';
import { StreamingResponse } from './http2-grpc-calls.js';

interface Watcher {
  response: StreamingResponse;
  service: string;
  last: ServingStatus;
}

export class HealthWatchers {
  private readonly watchers = new Set<Watcher>();

  constructor(
    private readonly statusFor: (service: string) => ServingStatus,
    /** HealthCheckResponse bytes for each status (encoded once). */
    private readonly encoded: (status: ServingStatus) => Uint8Array,
  ) {}

  get size(): number {
    return this.watchers.size;
  }

  /** Starts a Watch: sends the current status and keeps the call open (until the client's deadline, if it set one). */
  watch(stream: http2.ServerHttp2Stream, service: string, timeoutMs?: number): void {
    const watcher: Watcher = { response: new StreamingResponse(stream), service, last: this.statusFor(service) };
    watcher.response.write(this.encoded(watcher.last));
    this.watchers.add(watcher);
    const deadline =
      timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            this.watchers.delete(watcher);
            watcher.response.finish(GrpcStatus.DEADLINE_EXCEEDED, 'Deadline exceeded');
          }, timeoutMs).unref();
    // Cancelled by the client (RST_STREAM), or the connection went away.
    stream.once('close', () => {
      if (deadline) clearTimeout(deadline);
      this.watchers.delete(watcher);
    });
  }

  /** After a readiness change: a message to each watcher whose status changed. */
  notify(): void {
    for (const w of this.watchers) {
      const status = this.statusFor(w.service);
      if (status === w.last) continue;
      w.last = status;
      if (!w.response.write(this.encoded(status))) this.watchers.delete(w);
    }
  }

  /** Ends the watches of one connection (it was sent GOAWAY), or all of them (shutdown). */
  end(session?: http2.ServerHttp2Session): void {
    for (const w of this.watchers) {
      if (session && w.response.stream.session !== session) continue;
      this.watchers.delete(w);
      w.response.finish();
    }
  }
}
