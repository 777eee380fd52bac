/** Listening for the HTTP servers we run (admin, HTTP ext_authz, alerts). */
import type { Server } from 'node:net';
import type { AddressInfo } from 'node:net';

/** Listen on host:port; resolves with the port bound (port 0 picks one), rejects with the bind error. */
export function listenOnPort(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}
