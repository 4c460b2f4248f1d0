/**
 * The local stand-ins that replace never-used dependencies in the bundles (scripts/shims/, esbuild
 * `alias`, template.yaml `Alias`):
 * - `tr46` (mongodb): answers exactly as the real tr46 does for the options whatwg-url parses
 *   URLs with, on domains chosen to hit every rule (mapping, case, punycode both ways, bidi,
 *   joiners, forbidden and invalid code points, lengths); refuses every other option; and the
 *   MongoDB bundle, alone in a fresh process, rotates a user of the MongoDB wire fake.
 * - `@azure/identity` (sqlserver): every class tedious constructs is there and throws a clear
 *   error; tedious references no other; the Key Vault keystore provider is not in the bundle;
 *   and the SQL Server bundle, alone in a fresh process, runs tedious's whole login path (PRELOGIN,
 *   TLS, LOGIN7 over TLS) against the TDS stub and reports its "Login failed" as AUTH.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as azureShim from '../scripts/shims/azure-identity';
import * as tr46Shim from '../scripts/shims/tr46';
import { type BuildResult, buildBundles } from '../scripts/build';
import { engineByName } from '../scripts/engines';
import { createHandler } from '../src';
import { type SecretsManagerServer, startSecretsManagerServer } from '../src/testing';
import { runBundle } from './support/bundle-run';
import { makeTestCerts, type TestCerts } from './support/certs';
import { assertNoLeaksInAll, createRotationHarness } from './support/rotation-harness';
import { MongoWireFake } from './fakes/mongo-wire-fake';
import { startTdsStub, TDS, type TdsStub } from './fakes/sqlserver-fake';

const ROOT = join(__dirname, '..');
const realTr46 = require('tr46') as typeof tr46Shim;

/** The options of whatwg-url's domainToASCII(domain, beStrict = false), its only call of tr46. */
const URL_OPTIONS = { checkHyphens: false, checkBidi: true, checkJoiners: true, useSTD3ASCIIRules: false, transitionalProcessing: false, verifyDNSLength: false, ignoreInvalidPunycode: false };

/** Every ASCII character, alone, inside a label and as a label, and domains around the rules. */
const ASCII_DOMAINS = [
  ...Array.from({ length: 128 }, (_, c) => String.fromCharCode(c)).flatMap((ch) => [ch, `a${ch}b.com`, `${ch}.x`, `A${ch}.${ch}Z`]),
  '', 'localhost', 'example.com', 'EXAMPLE.COM', 'cluster-1.abc.us-east-1.docdb.amazonaws.com', 'a..b', '.', 'trailing.', '-a-.b', 'ab--cd.com',
  'xnx--a.com', 'x-n--a.com', 'a.bxn--c', '127.0.0.1', '0x7f.1', '[::1]', 'a'.repeat(64) + '.com', ('a'.repeat(63) + '.').repeat(5) + 'com',
];
const IDN_DOMAINS = ['bücher.de', 'xn--bcher-kva.de', 'XN--BCHER-KVA.de', 'a.Xn--zz', 'xn--.com', 'faß.de', '日本語.jp', 'mañana。com', 'a\u200cb.com', 'aא.com', '💩.la', 'ｅｘａｍｐｌｅ.com', 'a\u00adb.com'];

describe('the tr46 stand-in', () => {
  it('answers exactly as tr46 for ASCII domains without "xn--" labels, with the options of URL parsing', () => {
    for (const d of ASCII_DOMAINS) {
      expect(tr46Shim.toASCII(d, URL_OPTIONS), JSON.stringify(d)).toBe(realTr46.toASCII(d, URL_OPTIONS));
      expect(tr46Shim.toUnicode(d, URL_OPTIONS), JSON.stringify(d)).toEqual(realTr46.toUnicode(d, URL_OPTIONS));
    }
  });

  it('refuses internationalised domains and strict options instead of answering differently', () => {
    for (const d of IDN_DOMAINS) {
      expect(() => tr46Shim.toASCII(d, URL_OPTIONS), JSON.stringify(d)).toThrow(/tr46\.toASCII: internationalised domain names .* are not available in this bundle/);
      expect(() => tr46Shim.toUnicode(d, URL_OPTIONS), JSON.stringify(d)).toThrow(/tr46\.toUnicode: internationalised domain names/);
    }
    for (const key of ['useSTD3ASCIIRules', 'verifyDNSLength', 'checkHyphens']) {
      expect(() => tr46Shim.toASCII('example.com', { ...URL_OPTIONS, [key]: true }), key).toThrow(/not available in this bundle/);
    }
  });

  it("whatwg-url calls tr46 only from domainToASCII, for special URLs' hosts; mongodb connection strings never reach it", async () => {
    const source = readFileSync(join(ROOT, 'node_modules/whatwg-url/lib/url-state-machine.js'), 'utf8');
    expect(source.match(/tr46\.\w+\(/g)).toEqual(['tr46.toASCII(']);
    // Parse connection strings with tr46 swapped for a recorder: none reaches it.
    const tr46Module = realTr46 as { toASCII: typeof tr46Shim.toASCII };
    const original = tr46Module.toASCII;
    const calls: string[] = [];
    tr46Module.toASCII = (d, o) => {
      calls.push(d);
      return original(d, o);
    };
    try {
      const { default: ConnectionString } = require('mongodb-connection-string-url') as typeof import('mongodb-connection-string-url');
      for (const uri of [
        'mongodb://u%40x:p%3Aw@Host-1.Example.com:27017,host2.example.com/app?tls=true&replicaSet=rs0',
        'mongodb+srv://user:pw@cluster0.abcde.mongodb.net/db',
        'mongodb://[::1]:27017/admin',
        'mongodb://b%C3%BCcher.de:27017/',
        'mongodb://docdb-1.cluster-abc.us-east-1.docdb.amazonaws.com:27017/?tls=true&retryWrites=false',
      ]) {
        const cs = new ConnectionString(uri);
        expect(cs.hosts.length, uri).toBeGreaterThan(0);
      }
      // The control: a special URL does reach it.
      new (require('whatwg-url') as typeof import('whatwg-url')).URL('https://Example.com/');
      expect(calls).toEqual(['Example.com']);
    } finally {
      tr46Module.toASCII = original;
    }
  });
});

describe('the @azure/identity stand-in', () => {
  it('has every class tedious constructs, each throwing a clear error', () => {
    const used = new Set<string>();
    for (const file of ['connection.js']) {
      for (const m of readFileSync(join(ROOT, 'node_modules/tedious/lib', file), 'utf8').matchAll(/_identity\.(\w+)/g)) used.add(m[1]);
    }
    expect([...used].sort()).toEqual(['ClientSecretCredential', 'DefaultAzureCredential', 'ManagedIdentityCredential', 'UsernamePasswordCredential']);
    for (const name of used) {
      const Cls = (azureShim as Record<string, new (...args: unknown[]) => unknown>)[name];
      expect(typeof Cls, name).toBe('function');
      expect(() => new Cls('tenant', 'client', 'secret'), name).toThrow(
        `@azure/identity ${name}: Azure Active Directory (Microsoft Entra) authentication is not available in the SQL Server rotation bundle, which logs in with SQL Server authentication only.`,
      );
    }
  });
});

describe('the bundles with the stand-ins, alone in a fresh process', () => {
  const h = createRotationHarness({ handler: (opts) => createHandler({ name: 'unused' } as never, opts) });
  let sm: SecretsManagerServer;
  let built: BuildResult;
  let outdir: string;
  let certs: TestCerts;
  let mongo: MongoWireFake;
  let tds: TdsStub;
  const env = () => ({
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
    AWS_SECRET_ACCESS_KEY: 'secret-key-example',
    SECRETS_MANAGER_ENDPOINT: sm.endpoint,
    CONNECT_TIMEOUT_MS: '5000',
    EXCLUDE_CHARACTERS: '',
    LOG_LEVEL: 'info',
  });
  const bundle = (name: string) => built.bundles.find((b) => b.engine.name === name)!;

  beforeAll(async () => {
    sm = await startSecretsManagerServer(h.sm);
    outdir = mkdtempSync(join(tmpdir(), 'rl-shim-bundles-'));
    built = await buildBundles({ outdir, engines: [engineByName('mongodb'), engineByName('sqlserver')] });
    certs = makeTestCerts();
    mongo = new MongoWireFake();
    await mongo.start();
    tds = await startTdsStub({ encryption: 'on', cert: readFileSync(certs.serverCertFile, 'utf8'), key: readFileSync(certs.serverKeyFile, 'utf8') });
  }, 180_000);

  afterAll(async () => {
    await sm?.close();
    await mongo?.stop();
    await tds?.close();
    if (outdir) rmSync(outdir, { recursive: true, force: true });
    assertNoLeaksInAll();
  });

  it('leave the replaced packages out and carry the stand-ins', () => {
    expect(bundle('mongodb').packages).not.toContain('tr46');
    expect(bundle('mongodb').inputs).toContain('scripts/shims/tr46.ts');
    expect(bundle('mongodb').packages).toContain('whatwg-url');
    for (const p of ['@azure/identity', '@azure/msal-node', '@azure/keyvault-keys']) expect(bundle('sqlserver').packages, p).not.toContain(p);
    expect(bundle('sqlserver').inputs).toContain('scripts/shims/azure-identity.ts');
    expect(bundle('sqlserver').inputs.some((i) => i.includes('keystore-provider-azure-key-vault'))).toBe(false);
  });

  it('mongodb: a single-user rotation of a user with a hostile name and password succeeds; the new password logs in', async () => {
    const user = `Shim 'o"B],x=y\\; %Ü$$--`;
    const pw0 = `Init'"]\\; %pä$w0rd,=$$-- shim`;
    mongo.reset();
    mongo.addRole('admin', 'changeOwnPasswordRole', ['changeOwnPassword']);
    mongo.addUser('app', user, pw0, ['readWrite@app', 'changeOwnPasswordRole@admin']);
    h.sensitive(pw0);
    const arn = await h.createSecret({ engine: 'mongo', host: mongo.host, port: mongo.port, username: user, password: pw0, dbname: 'app', ssl: false });
    const run = h.begin(arn);
    const events = (['createSecret', 'setSecret', 'testSecret', 'finishSecret'] as const).map((s) => run.event(s));
    const r = await runBundle(bundle('mongodb').file, events, env());
    h.logs.push(...r.logs.map((l) => JSON.stringify(l)));
    h.errors.push(...r.raw);
    expect(r.steps.map((s) => [s.step, s.code, s.message])).toEqual(events.map((e) => [e.Step, null, undefined]));
    run.complete();
    const cur = await h.credentials(arn);
    h.sensitive(cur.password);
    expect(cur.username).toBe(user);
    expect(cur.password).not.toBe(pw0);
    expect(mongo.checkPassword('app', user, cur.password)).toBe(true);
    expect(mongo.checkPassword('app', user, pw0)).toBe(false);
  }, 120_000);

  it("sqlserver: tedious's SQL Server login runs (PRELOGIN, TLS, LOGIN7 over TLS); the stub's refusal is AUTH", async () => {
    const arn = await h.createSecret({ engine: 'sqlserver', host: 'localhost', port: tds.port, username: 'app', password: 'Shim-Initial-Pa55word!', dbname: 'appdb', sslCa: certs.caPem });
    const run = h.begin(arn);
    const r = await runBundle(bundle('sqlserver').file, [run.event('createSecret'), run.event('setSecret')], env());
    h.logs.push(...r.logs.map((l) => JSON.stringify(l)));
    h.errors.push(...r.raw);
    expect(r.steps.map((s) => [s.step, s.code])).toEqual([
      ['createSecret', null],
      ['setSecret', 'AUTH'],
    ]);
    expect(r.steps[1].message).not.toMatch(/azure|identity/i);
    expect(tds.handshakes).toBeGreaterThan(0);
    expect(tds.received).toContainEqual({ type: TDS.LOGIN7, overTls: true });
  }, 120_000);
});
