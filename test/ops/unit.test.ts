/**
 * The pure parts of the operations commands: SHOW GRANTS parsing for MySQL 8 / MariaDB forms the
 * real server here does not print, the promotion rule for a pending value, the repair decisions,
 * and argument parsing.
 */
import { describe, expect, it } from 'vitest';
import { DatabaseRotator } from '../../src/db/database-rotator';
import type { DbSecret } from '../../src/db/secret';
import { parseArgs } from '../../src/ops/cli';
import { rotatorForEngine } from '../../src/ops/engines';
import { PreflightError } from '../../src/ops/report';
import { ineligible, planRepair, type StatusReport } from '../../src/ops/status';
import { parseGrantLine } from '../../rotators/mysql/preflight';
import { postgresEngine } from '../../rotators/postgres/engine';

describe('parseGrantLine', () => {
  it('reads global, database, table, column and routine grants', () => {
    expect(parseGrantLine("GRANT SELECT, INSERT, UPDATE (`a`, `b`) ON `app`.`t``x` TO `u`@`%`")).toEqual({
      kind: 'privileges',
      grant: { privileges: ['SELECT', 'INSERT', 'UPDATE'], db: 'app', obj: 't`x', objectType: '', grantOption: false },
    });
    expect(parseGrantLine('GRANT ALL PRIVILEGES ON *.* TO `admin`@`%` WITH GRANT OPTION')).toMatchObject({
      grant: { privileges: ['ALL PRIVILEGES'], db: '*', obj: '*', grantOption: true },
    });
    expect(parseGrantLine('GRANT EXECUTE ON PROCEDURE `app`.`p` TO `u`@`%`')).toMatchObject({ grant: { objectType: 'PROCEDURE', db: 'app', obj: 'p' } });
    expect(parseGrantLine('GRANT CREATE TEMPORARY TABLES, LOCK TABLES ON `a b`.* TO `u`@`h`')).toMatchObject({
      grant: { privileges: ['CREATE TEMPORARY TABLES', 'LOCK TABLES'], db: 'a b', obj: '*' },
    });
    // MySQL 8 dynamic privileges
    expect(parseGrantLine('GRANT BACKUP_ADMIN,ROLE_ADMIN ON *.* TO `admin`@`%` WITH GRANT OPTION')).toMatchObject({
      grant: { privileges: ['BACKUP_ADMIN', 'ROLE_ADMIN'], grantOption: true },
    });
  });

  it('tells role grants and other rows apart; a password hash is never part of what it returns', () => {
    expect(parseGrantLine('GRANT `rds_superuser_role`@`%` TO `admin`@`%`')).toEqual({ kind: 'role', roles: ['rds_superuser_role'] });
    expect(parseGrantLine('GRANT `r1`, `r2` TO `u`@`%`')).toEqual({ kind: 'role', roles: ['r1', 'r2'] });
    expect(parseGrantLine("GRANT PROXY ON ''@'%' TO 'root'@'localhost' WITH GRANT OPTION")).toEqual({ kind: 'other' });
    expect(parseGrantLine('SET DEFAULT ROLE `r1` FOR `u`@`%`')).toEqual({ kind: 'other' });
    const hashed = parseGrantLine("GRANT USAGE ON *.* TO `u`@`%` IDENTIFIED BY PASSWORD '*A4B6157319038724E3560894F7F932C8886EBFCF'");
    expect(JSON.stringify(hashed)).not.toContain('A4B6157319');
  });
});

const rotator = new DatabaseRotator(postgresEngine);
const cur: DbSecret = { engine: 'postgres', host: 'db.example', port: 5432, username: 'app', password: 'p1-long-enough', ssl: true };

describe('ineligible (what may be promoted)', () => {
  it('single user: only the password may differ', () => {
    expect(ineligible(rotator, cur, { ...cur, password: 'p2-long-enough' })).toBeUndefined();
    expect(ineligible(rotator, cur, { ...cur, username: 'other' })).toMatch(/never changes the user/);
    expect(ineligible(rotator, cur, { ...cur, host: 'evil.example' })).toMatch(/"host" differs/);
    expect(ineligible(rotator, cur, { ...cur, ssl: false })).toMatch(/"ssl" differs/);
    expect(ineligible(rotator, cur, { ...cur, extra: 1 })).toMatch(/"extra" differs/);
  });
  it('alternating: the pair\'s other user, same admin secret', () => {
    const alt = { ...cur, masterarn: 'arn:aws:secretsmanager:us-east-1:1:secret:admin' };
    expect(ineligible(rotator, alt, { ...alt, username: 'app_clone', password: 'x' })).toBeUndefined();
    expect(ineligible(rotator, alt, { ...alt, username: 'postgres', password: 'x' })).toMatch(/neither "app" nor its alternate "app_clone"/);
    expect(ineligible(rotator, alt, { ...alt, username: 'app_clone', masterarn: 'arn:other' })).toMatch(/"masterarn" differs/);
  });
});

const base: StatusReport = {
  secretId: 's',
  rotation: { rotationEnabled: true },
  versions: [],
  currentVersionId: 'cur',
  pendingVersionId: 'pen',
  stalePending: true,
  current: { result: 'ok', detail: '' },
  diagnosis: [],
  ok: false,
};

describe('planRepair', () => {
  it('decides from the two logins, and explains', () => {
    expect(planRepair({ ...base, stalePending: false, pendingVersionId: undefined, ok: true })).toMatchObject({ action: { kind: 'none' }, resolves: true });
    expect(planRepair(base)).toMatchObject({ action: { kind: 'remove-pending', versionId: 'pen' }, resolves: true });
    expect(planRepair({ ...base, current: { result: 'AUTH', detail: '' }, pending: { result: 'ok', detail: '' } })).toMatchObject({
      action: { kind: 'finish', versionId: 'pen', fromVersionId: 'cur' },
    });
    const neither = planRepair({ ...base, current: { result: 'AUTH', detail: '' }, pending: { result: 'AUTH', detail: '' } });
    expect(neither).toMatchObject({ action: { kind: 'none' }, resolves: false });
    expect(neither.reasons.join(' ')).toContain('neither credential works');
    expect(planRepair({ ...base, current: { result: 'TLS', detail: '' }, pending: { result: 'ok', detail: '' } })).toMatchObject({ action: { kind: 'none' }, resolves: false });
    expect(planRepair({ ...base, current: { result: 'AUTH', detail: '' }, pendingHasValue: false })).toMatchObject({ action: { kind: 'none' } });
    expect(planRepair({ ...base, stalePending: false, current: { result: 'AUTH', detail: '' } })).toMatchObject({ action: { kind: 'none' }, resolves: false });
  });
});

describe('CLI plumbing', () => {
  it('parses arguments', () => {
    expect(parseArgs(['repair', '--secret-id=arn:x', '--yes', '--json', '--region', 'eu-west-1'])).toMatchObject({
      command: 'repair', secretId: 'arn:x', yes: true, json: true, region: 'eu-west-1',
    });
    expect(() => parseArgs(['status', '--secret-id'])).toThrow(/needs a value/);
    expect(() => parseArgs(['status', '--force'])).toThrow(/Unknown option/);
  });

  it('maps every documented engine value to its rotator, and refuses others', () => {
    const cases: Record<string, string> = {
      postgres: 'postgres', 'aurora-postgresql': 'postgres', mysql: 'mysql', 'aurora-mysql': 'mysql', mariadb: 'mysql', redshift: 'redshift',
      sqlserver: 'sqlserver', 'sqlserver-se': 'sqlserver', oracle: 'oracle', 'oracle-ee-cdb': 'oracle', mongo: 'mongodb', docdb: 'mongodb',
    };
    for (const [engine, name] of Object.entries(cases)) expect(rotatorForEngine(engine).name, engine).toBe(name);
    expect(() => rotatorForEngine('db2')).toThrow(/no built-in rotator serves/);
  });

  it('PreflightError lists every failure with its remedy and takes the first failure\'s code', () => {
    const e = new PreflightError({
      secretId: 'arn:s',
      ok: false,
      checks: [
        { id: 'a', title: 'A', status: 'pass', detail: 'fine' },
        { id: 'b', title: 'B', status: 'fail', detail: 'bad', code: 'NETWORK', remedy: 'fix b' },
        { id: 'c', title: 'C', status: 'fail', detail: 'worse', code: 'PRIVILEGE' },
      ],
    });
    expect(e.code).toBe('NETWORK');
    expect(e.message).toContain('found 2 problem(s)');
    expect(e.message).toContain('(1) [NETWORK] B: bad Remedy: fix b');
    expect(e.message).toContain('(2) [PRIVILEGE] C: worse');
  });
});
