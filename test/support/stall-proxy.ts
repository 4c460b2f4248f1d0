/**
 * A TCP proxy in front of a real PostgreSQL server that forwards the login (startup and
 * authentication messages) and then stops forwarding: the first query (simple `Q` or extended
 * `P`) and everything after it are swallowed, and the client's socket is left open. To the
 * client, the server accepted the login and then never answers, as a stalled or black-holed
 * server would. Plaintext only (the client must not ask for TLS). 127.0.0.1 only.
 */
import { createServer, connect, type Socket } from 'node:net';

export interface StallProxy {
  port: number;
  /** Queries swallowed so far. */
  stalled(): number;
  close(): Promise<void>;
}

const SSL_REQUEST = 80877103;
const GSS_REQUEST = 80877104;

export async function startStallProxy(target: { host: string; port: number }): Promise<StallProxy> {
  let swallowed = 0;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    sockets.add(client).add(upstream);
    let buf = Buffer.alloc(0);
    let started = false;
    let stalled = false;
    upstream.on('data', (d) => client.write(d));
    client.on('data', (d) => {
      if (stalled) return;
      buf = Buffer.concat([buf, d]);
      for (;;) {
        if (!started) {
          if (buf.length < 8) return;
          const len = buf.readInt32BE(0);
          if (buf.length < len) return;
          const msg = buf.subarray(0, len);
          buf = buf.subarray(len);
          const code = msg.readInt32BE(4);
          if (code !== SSL_REQUEST && code !== GSS_REQUEST) started = true;
          upstream.write(msg);
          continue;
        }
        if (buf.length < 5) return;
        const type = String.fromCharCode(buf[0]);
        const len = buf.readInt32BE(1);
        if (buf.length < len + 1) return;
        const msg = buf.subarray(0, len + 1);
        buf = buf.subarray(len + 1);
        if (type === 'Q' || type === 'P') {
          stalled = true;
          swallowed++;
          return;
        }
        upstream.write(msg);
      }
    });
    const drop = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', drop);
    upstream.on('error', drop);
    client.on('close', drop);
    upstream.on('close', () => {
      // A server that closes before the stall: pass it on. After the stall, stay silent.
      if (!stalled) drop();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    port,
    stalled: () => swallowed,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
