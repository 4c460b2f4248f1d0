/**
 * Does this user log in with this password (plaintext, the check a test makes after a rotation)?
 * 'ok' after a login and `SELECT 1`, else the driver's error code (e.g. 28P01,
 * ER_ACCESS_DENIED_ERROR) or message. One helper per real server, shared by the test files.
 */
import { createConnection } from 'mysql2/promise';
import { Client } from 'pg';

/** `tls`: log in over TLS, verifying the server's certificate with `ca` for the name `host` (dialled instead of server.host). */
export async function pgLogin(server: { host: string; port: number; database: string }, user: string, password: string, tls: false | { ca: string; host: string } = false): Promise<string> {
  const c = new Client({
    host: tls ? tls.host : server.host,
    port: server.port,
    user,
    password,
    database: server.database,
    ssl: tls ? { ca: tls.ca } : false,
    connectionTimeoutMillis: 5000,
  });
  try {
    await c.connect();
    await c.query('SELECT 1');
    return 'ok';
  } catch (err) {
    return String((err as { code?: string }).code ?? (err as Error).message);
  } finally {
    await c.end().catch(() => undefined);
  }
}

export async function mariaLogin(server: { host: string; port: number }, user: string, password: string): Promise<string> {
  try {
    const c = await createConnection({ host: server.host, port: server.port, user, password, connectTimeout: 5000 });
    await c.query('SELECT 1');
    await c.end();
    return 'ok';
  } catch (err) {
    return String((err as { code?: string }).code ?? (err as Error).message);
  }
}
