/**
 * The shared Node-level classifier, on errors Node really raises (refused connections, untrusted
 * and misnamed certificates, plaintext servers, dropped handshakes) and on the codes and
 * messages the engines classified on their own before.
 */
import { rmSync, readFileSync } from 'node:fs';
import { createServer as createNetServer, connect as netConnect, type Server } from 'node:net';
import { connect as tlsConnect, createServer as createTlsServer, type ConnectionOptions } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorChain, nodeErrorClass } from '../../src';
import { makeTestCerts, type TestCerts } from '../support/certs';
import { freePort } from '../support/server-process';

const withCode = (message: string, code?: string) => Object.assign(new Error(message), code ? { code } : {});

/** The error a TLS client gets from `port` (it must fail). */
function tlsFailure(options: ConnectionOptions): Promise<Error> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect(options, () => {
      socket.destroy();
      reject(new Error('the TLS connection unexpectedly succeeded'));
    });
    socket.once('error', resolve);
  });
}

function listening(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
}

describe('errors Node really raises', () => {
  let certs: TestCerts;
  let tlsServer: Server;
  let tlsPort: number;
  let plainServer: Server;
  let plainPort: number;
  let droppingServer: Server;
  let droppingPort: number;

  beforeAll(async () => {
    certs = makeTestCerts();
    tlsServer = createTlsServer({ cert: readFileSync(certs.serverCertFile), key: readFileSync(certs.serverKeyFile) }, (s) => s.end());
    tlsPort = await listening(tlsServer);
    // Answers a TLS ClientHello with plaintext, as a server without TLS does.
    plainServer = createNetServer((s) => s.once('data', () => s.end('HTTP/1.0 400 Bad Request\r\n\r\n')));
    plainPort = await listening(plainServer);
    // Accepts the TCP connection, then drops it during the handshake.
    droppingServer = createNetServer((s) => s.once('data', () => s.destroy()));
    droppingPort = await listening(droppingServer);
  });

  afterAll(() => {
    for (const s of [tlsServer, plainServer, droppingServer]) s?.close();
    if (certs) rmSync(certs.dir, { recursive: true, force: true });
  });

  it('a refused connection is NETWORK', async () => {
    const port = await freePort();
    const err = await new Promise<Error>((resolve) => netConnect({ host: '127.0.0.1', port }).once('error', resolve));
    expect((err as { code?: string }).code).toBe('ECONNREFUSED');
    expect(nodeErrorClass(err)).toBe('NETWORK');
  });

  it('a certificate from an untrusted CA is TLS', async () => {
    const err = await tlsFailure({ host: '127.0.0.1', port: tlsPort, servername: 'localhost' });
    expect(nodeErrorClass(err)).toBe('TLS');
  });

  it('a certificate for another host name is TLS', async () => {
    const err = await tlsFailure({ host: '127.0.0.1', port: tlsPort, servername: 'db.example.com', ca: certs.caPem });
    expect((err as { code?: string }).code).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
    expect(nodeErrorClass(err)).toBe('TLS');
  });

  it('a plaintext server answering a ClientHello is TLS', async () => {
    const err = await tlsFailure({ host: '127.0.0.1', port: plainPort, servername: 'localhost', ca: certs.caPem });
    expect(nodeErrorClass(err)).toBe('TLS');
  });

  it('a connection dropped during the handshake (ECONNRESET, "before secure TLS connection") is TLS', async () => {
    const err = await tlsFailure({ host: '127.0.0.1', port: droppingPort, servername: 'localhost', ca: certs.caPem });
    expect((err as { code?: string }).code).toBe('ECONNRESET');
    expect(err.message).toMatch(/TLS/);
    expect(nodeErrorClass(err)).toBe('TLS');
  });
});

describe('the codes and messages the engines classified on their own', () => {
  it.each([
    'DEPTH_ZERO_SELF_SIGNED_CERT',
    'SELF_SIGNED_CERT_IN_CHAIN',
    'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
    'UNABLE_TO_GET_ISSUER_CERT',
    'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
    'CERT_HAS_EXPIRED',
    'CERT_NOT_YET_VALID',
    'CERT_UNTRUSTED',
    'CERT_SIGNATURE_FAILURE',
    'CERT_REJECTED',
    'ERR_TLS_CERT_ALTNAME_INVALID',
    'ERR_TLS_HANDSHAKE_TIMEOUT',
    'ERR_SSL_WRONG_VERSION_NUMBER',
    'ERR_OSSL_PEM_NO_START_LINE',
    'HOSTNAME_MISMATCH',
    'EPROTO',
  ])('code %s is TLS', (code) => {
    expect(nodeErrorClass(withCode('x', code))).toBe('TLS');
  });

  it.each(['ECONNREFUSED', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'EPIPE'])('code %s is NETWORK', (code) => {
    expect(nodeErrorClass(withCode('x', code))).toBe('NETWORK');
  });

  it.each([
    ['The server does not support SSL connections', 'TLS'],
    ['self-signed certificate in certificate chain', 'TLS'],
    ['unable to get local issuer certificate', 'TLS'],
    ["Hostname/IP does not match certificate's altnames: IP: 10.0.0.1 is not in the cert's list", 'TLS'],
    ['C0E7A9B1:error:0A00010B:SSL routines:ssl3_get_record:wrong version number', 'TLS'],
    ['Client network socket disconnected before secure TLS connection was established', 'TLS'],
    ['Connection terminated due to connection timeout', 'NETWORK'],
    ['Connection terminated unexpectedly', 'NETWORK'],
    ['Server selection timed out after 500 ms', 'NETWORK'],
    ['connect ECONNREFUSED 127.0.0.1:1', 'NETWORK'],
    ['getaddrinfo ENOTFOUND db.example.internal', 'NETWORK'],
  ] as const)('message %j is %s', (message, expected) => {
    expect(nodeErrorClass(new Error(message))).toBe(expected);
  });

  it('leaves server refusals and unknown errors to the engine', () => {
    expect(nodeErrorClass(withCode('password authentication failed for user "app"', '28P01'))).toBeUndefined();
    expect(nodeErrorClass(withCode("Login failed for user 'app'.", 'ELOGIN'))).toBeUndefined();
    expect(nodeErrorClass(new Error('socket hang up'))).toBeUndefined();
    expect(nodeErrorClass(undefined)).toBeUndefined();
    expect(nodeErrorClass('a string')).toBeUndefined();
  });
});

describe('precedence and the error chain', () => {
  it('an unreachable host is NETWORK even when a message mentions TLS', () => {
    expect(nodeErrorClass(withCode('connect ECONNREFUSED ssl-db.example.com:5432', 'ECONNREFUSED'))).toBe('NETWORK');
  });

  it('a TLS code anywhere in the chain wins over a timeout message on top', () => {
    const err = new Error('Server selection timed out', { cause: withCode('self-signed certificate in certificate chain', 'SELF_SIGNED_CERT_IN_CHAIN') });
    expect(nodeErrorClass(err)).toBe('TLS');
  });

  it('walks causes, AggregateError members and driver-specific nesting', () => {
    const refused = withCode('connect ECONNREFUSED ::1:5432', 'ECONNREFUSED');
    expect(nodeErrorClass(new Error('wrapper', { cause: new AggregateError([new Error('a'), refused], 'all failed') }))).toBe('NETWORK');

    const inner = withCode('certificate has expired', 'CERT_HAS_EXPIRED');
    const selection = Object.assign(new Error('Server selection failed'), { reason: { servers: new Map([['h:27017', { error: inner }]]) } });
    expect(nodeErrorClass(selection)).toBeUndefined();
    const servers = (e: object) => {
      const map = (e as { reason?: { servers?: Map<string, { error?: unknown }> } }).reason?.servers;
      return map ? [...map.values()].map((d) => d.error) : undefined;
    };
    expect(nodeErrorClass(selection, servers)).toBe('TLS');
    expect(errorChain(selection, servers)).toEqual([selection, inner]);
  });

  it('survives cycles and very deep chains', () => {
    const a = new Error('a') as Error & { cause?: unknown };
    const b = new Error('b', { cause: a });
    a.cause = b;
    expect(errorChain(a)).toEqual([a, b]);
    let deep: Error = withCode('x', 'ECONNREFUSED');
    for (let i = 0; i < 50; i++) deep = new Error(`level ${i}`, { cause: deep });
    expect(errorChain(deep).length).toBeLessThanOrEqual(20);
    expect(nodeErrorClass(deep)).toBeUndefined(); // the refusal is out of reach, not guessed
  });
});
