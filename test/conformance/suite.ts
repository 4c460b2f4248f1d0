/**
 * The shared engine conformance suite: one describe-factory that every engine target runs (real
 * server, in-process fake, or a live server named by LIVE_* variables), through the real handler,
 * the real AWS SDK client and the Secrets Manager double. Modelled on Vault's dbplugin/v5/testing
 * helpers: the engine-specific part is a small adapter (target.ts); the scenarios are written once.
 *
 * Every scenario is cheap (a few rotations) so that 8 targets stay within the test budget.
 */
import { PutSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DatabaseRotator } from '../../src/db/database-rotator';
import { createHandler, type RotationEvent } from '../../src/handler';
import { DB_CALLS, EngineRecorder } from '../support/engine-recorder';
import { failedStepCodes, logLines } from '../support/log-lines';
import { assertNoLeaksInAll, createRotationHarness, handlerCalls, type RotationHarness } from '../support/rotation-harness';
import type { ConformanceTarget, TargetWorld } from './target';

type Strategy = 'single' | 'alternating';
const STRATEGIES: Strategy[] = ['single', 'alternating'];

interface Ctx {
  w: TargetWorld;
  h: RotationHarness;
  rec: EngineRecorder;
  rotator: DatabaseRotator<any>;
}

/**
 * Every password, secret value and RotationToken a test saw must be absent from every log line
 * and error: raw, JSON-escaped, URI-encoded (the harness checks those) and base64.
 */
export function assertNoSecretsInAnyForm(h: RotationHarness, extra: string[] = []): void {
  h.sensitive(...extra);
  h.assertNoLeaks();
  const tokens = h.events.map((e) => (e as { RotationToken?: string }).RotationToken).filter((t): t is string => !!t);
  h.sensitive(...tokens);
  // Each log line as written, and each string in it decoded once (a secret JSON-encoded into a message is escaped twice in the line).
  const texts = [...h.logs, ...h.errors];
  for (const line of h.logs) {
    try {
      collectStrings(JSON.parse(line), texts);
    } catch {
      // not JSON: checked as written
    }
  }
  for (const v of h.sensitiveValues()) {
    const b64 = Buffer.from(v, 'utf8').toString('base64');
    const forms = new Set([v, JSON.stringify(v).slice(1, -1), b64, b64.replace(/=+$/, ''), Buffer.from(v, 'utf8').toString('base64url')]);
    try {
      forms.add(encodeURIComponent(v));
    } catch {
      // lone surrogate: no URI form
    }
    for (const f of forms) {
      if (f.length >= 8 && texts.some((t) => t.includes(f))) throw new Error(`A sensitive value (length ${v.length}) appears in a log line or error (raw, JSON-escaped, URI or base64 form)`);
    }
  }
}

function collectStrings(v: unknown, out: string[]): void {
  if (typeof v === 'string') out.push(v);
  else if (v && typeof v === 'object') for (const x of Object.values(v)) collectStrings(x, out);
}

export function conformanceSuite(target: ConformanceTarget): void {
  if (target.skip) {
    describe.skip(`${target.name}: ${target.skip}`, () => {
      it.skip(`conformance suite not run: ${target.skip}`, () => undefined);
    });
    return;
  }

  describe(`${target.name}: engine conformance`, () => {
    const open: Array<{ ctx: Ctx; extra: string[] }> = [];
    beforeAll(async () => target.prepare?.());
    afterAll(async () => target.dispose?.());

    afterEach(async () => {
      const all = open.splice(0);
      try {
        for (const { ctx, extra } of all) {
          assertNoSecretsInAnyForm(ctx.h, [...extra, ctx.w.admin.password]);
          await ctx.w.afterEach?.();
        }
        assertNoLeaksInAll(); // and forget this test's harnesses
      } finally {
        for (const { ctx } of all) await ctx.w.close?.();
      }
    });

    async function world(opts: { attempts?: number } = {}): Promise<Ctx> {
      const w = await target.open();
      const rec = new EngineRecorder(target.engine);
      const rotator = target.rotator ? target.rotator(rec.engine) : new DatabaseRotator(rec.engine);
      const h = createRotationHarness({
        handler: (o) => createHandler(rotator, o),
        env: { ...(target.env ?? {}) },
        sm: { rotationMaxAttempts: opts.attempts ?? 1 },
      });
      const ctx = { w, h, rec, rotator };
      open.push({ ctx, extra: [] });
      return ctx;
    }

    /** A user on the server and a child secret for it (alternating: with masterarn). */
    async function secretFor(ctx: Ctx, strategy: Strategy, opts: { hostile?: boolean; tag?: string; fields?: Record<string, unknown> } = {}) {
      const { w, h } = ctx;
      const username = w.userName(opts.tag ?? strategy.slice(0, 3), opts.hostile);
      const password = w.password(opts.hostile);
      h.sensitive(password);
      await w.setUser(username, password);
      const extra: Record<string, unknown> = {};
      if (strategy === 'alternating') extra.masterarn = await h.createSecret(w.admin.secret);
      const arn = await h.createSecret({ ...w.base, username, password, ...extra, ...(opts.fields ?? {}) });
      return { arn, username, password };
    }

    async function expectCurrentLogsIn(ctx: Ctx, arn: string): Promise<{ username: string; password: string; versionId: string }> {
      const cur = await ctx.h.credentials(arn);
      expect(await ctx.w.tryLogin(cur.username, cur.password), `AWSCURRENT (${cur.username}) logs in`).toBe(true);
      return cur;
    }

    async function rotateOk(ctx: Ctx, arn: string): Promise<void> {
      const r = await ctx.h.rotate(arn);
      expect(r.error).toBeUndefined();
      expect(r.succeeded).toBe(true);
    }

    describe.each(STRATEGIES)('%s', (strategy) => {
      it('rotates end to end, several times (alternating: both directions); each new AWSCURRENT logs in', async () => {
        const ctx = await world();
        const { arn, username, password } = await secretFor(ctx, strategy);
        const clone = ctx.rotator.alternateUsername(username);
        const seen: string[] = [];
        let before = { username, password };
        for (let i = 0; i < 3; i++) {
          await rotateOk(ctx, arn);
          const cur = await expectCurrentLogsIn(ctx, arn);
          expect(cur.password).not.toBe(before.password);
          if (strategy === 'single') {
            expect(cur.username).toBe(username);
            expect(await ctx.w.tryLogin(username, before.password), 'the replaced password no longer logs in').toBe(false);
          } else {
            expect(cur.username).toBe(i % 2 === 0 ? clone : username);
            // The previous user keeps its password until the next rotation (AWSPREVIOUS still works).
            expect(await ctx.w.tryLogin(before.username, before.password), 'AWSPREVIOUS still logs in').toBe(true);
          }
          seen.push(cur.username);
          before = cur;
        }
        expect(ctx.h.stages(arn)).toSatisfy((s: Record<string, string[]>) => Object.values(s).some((l) => l.includes('AWSPREVIOUS')));
        // No login ever failed on a clean rotation.
        expect(ctx.rec.connects.filter((c) => !c.ok)).toEqual([]);
      });

      it('the framework logs every engine call with its duration (LOG_LEVEL=debug), the same fields on every engine, and no secret', async () => {
        const ctx = await world();
        const { arn } = await secretFor(ctx, strategy);
        ctx.h.env.LOG_LEVEL = 'debug';
        await rotateOk(ctx, arn);
        const ended = ctx.h.records().filter((r) => r.message === 'engine call ended');
        const calls = ended.map((r) => r.call);
        const expected = strategy === 'single' ? ['connect', 'setOwnPassword', 'check', 'close'] : ['connect', 'checkAlternateUser', 'upsertAlternateUser', 'check', 'close'];
        for (const call of expected) expect(calls, `an "engine call ended" line for ${call}`).toContain(call);
        // Every call that started ended, with the same fields on every engine.
        expect(ctx.h.records().filter((r) => r.message === 'engine call started').length).toBe(ended.length);
        for (const r of ended) {
          expect(r).toMatchObject({ level: 'DEBUG', engine: ctx.rotator.name, outcome: 'ok' });
          expect(typeof r.durationMs).toBe('number');
          expect(r.durationMs as number).toBeGreaterThanOrEqual(0);
        }
        // A clean rotation: at most four logins, none failing.
        expect(ended.filter((r) => r.call === 'connect').length).toBeLessThanOrEqual(4);
      });

      it('hostile usernames and passwords (quotes, backslash, semicolon, --, $$, unicode, spaces)', async () => {
        const ctx = await world();
        const { arn, username } = await secretFor(ctx, strategy, { hostile: true });
        for (let i = 0; i < 2; i++) {
          await rotateOk(ctx, arn);
          const cur = await expectCurrentLogsIn(ctx, arn);
          expect(cur.username).toBe(strategy === 'single' || i === 1 ? username : ctx.rotator.alternateUsername(username));
        }
      });

      it('replays: every step delivered twice (createSecret also concurrently), then all four again after success', async () => {
        const ctx = await world();
        const { h } = ctx;
        const { arn } = await secretFor(ctx, strategy);
        const quietReplays: string[] = [];
        h.intercept = async (event, invoke) => {
          if (event.Step === 'createSecret') {
            await Promise.all([invoke(event), invoke(event)]);
            const stored = await h.version(arn, event.ClientRequestToken);
            await invoke(event);
            // A replayed createSecret keeps the value stored first (its PutSecretValue is refused or
            // identical: a version's value never changes) and asks for no password.
            if ((await h.version(arn, event.ClientRequestToken)).value !== stored.value) quietReplays.push('AWSPENDING changed');
            quietReplays.push(...h.sm.calls.filter((c) => c.operation === 'GetRandomPassword').map((c) => c.operation));
            return;
          }
          await invoke(event);
          await invoke(event);
        };
        const r = await h.rotate(arn);
        expect(r.error).toBeUndefined();
        expect(quietReplays).toEqual([]);
        h.intercept = undefined;
        const cur = await expectCurrentLogsIn(ctx, arn);
        const stages = h.stages(arn);
        const events = h.events.filter((e) => e.ClientRequestToken === r.versionId);
        for (const step of ['createSecret', 'setSecret', 'testSecret', 'finishSecret'] as const) {
          const e = events.find((x) => x.Step === step) as RotationEvent;
          await h.invoke(e);
        }
        expect(h.stages(arn)).toEqual(stages);
        expect(await h.credentials(arn)).toEqual(cur);
        expect(await ctx.w.tryLogin(cur.username, cur.password)).toBe(true);
      });

      it('RotateImmediately=false: the testSecret-only run on a value-less AWSPENDING runs the read-only preflight and changes nothing', async () => {
        const ctx = await world();
        const { h, rec } = ctx;
        const { arn, username, password } = await secretFor(ctx, strategy);
        const before = await h.current(arn);
        const r = await h.sm.rotateAndWait(arn, { lambdaArn: h.lambdaArn, rotateImmediately: false });
        expect(r.error).toBeUndefined();
        expect(r.steps).toEqual(['testSecret']);
        expect(await h.current(arn)).toEqual(before);
        expect(h.holderOf(arn, 'AWSPENDING')).toBeUndefined();
        // Nothing that changes the server; the preflight logs in with AWSCURRENT first, and only
        // then (alternating users) as the admin, for the read-only pair check.
        expect(rec.calls.filter((c) => c === 'setOwnPassword' || c === 'upsertAlternateUser')).toEqual([]);
        expect(rec.connects.map((c) => c.username)).toEqual(strategy === 'single' ? [username] : [username, ctx.w.admin.username]);
        expect(await ctx.w.tryLogin(username, password)).toBe(true);
      });

      it('finishSecret out of order (before createSecret, then before setSecret) is refused; AWSCURRENT stays and works', async () => {
        const ctx = await world();
        const { h } = ctx;
        const { arn, username, password } = await secretFor(ctx, strategy);
        const before = await h.current(arn);
        const run = h.begin(arn);
        await expect(h.invoke(run.event('finishSecret'))).rejects.toThrow();
        await h.invoke(run.event('createSecret'));
        await expect(h.invoke(run.event('finishSecret'))).rejects.toThrow();
        expect(await h.current(arn)).toEqual(before);
        const pending = await h.version(arn, run.versionId);
        const p = pending.json as { username: string; password: string };
        expect(await ctx.w.tryLogin(p.username, p.password), 'the pending value was never set').toBe(false);
        expect(await ctx.w.tryLogin(username, password)).toBe(true);
        expect(ctx.rec.calls.filter((c) => c === 'setOwnPassword' || c === 'upsertAlternateUser')).toEqual([]);
        expect(failedStepCodes(h)).toEqual(['STATE', 'AUTH']);
      });

      it('malformed secrets (missing username / password / host, bad ports) fail with SECRET_FORMAT before any login', async () => {
        const ctx = await world();
        const { h, w } = ctx;
        const username = w.userName('bad');
        const password = w.password();
        const masterarn = strategy === 'alternating' ? await h.createSecret(w.admin.secret) : undefined;
        const good = { ...w.base, username, password, ...(masterarn ? { masterarn } : {}) };
        const cases: Array<[Record<string, unknown>, string]> = [
          [{ ...good, username: undefined }, '"username"'],
          [{ ...good, password: undefined }, '"password"'],
          [{ ...good, host: undefined }, '"host"'],
          [{ ...good, port: 'abc' }, '"port"'],
          [{ ...good, port: 70000 }, '"port"'],
          [{ ...good, port: 0 }, '"port"'],
        ];
        for (const [value, field] of cases) {
          const arn = await h.createSecret(JSON.parse(JSON.stringify(value)) as Record<string, unknown>);
          const before = await h.current(arn);
          const r = await h.rotate(arn);
          expect(r.succeeded).toBe(false);
          expect(r.error, 'the error names the field').toContain(field);
          expect(await h.current(arn)).toEqual(before);
        }
        expect(failedStepCodes(h)).toEqual(cases.map(() => 'SECRET_FORMAT'));
        expect(ctx.rec.connects).toEqual([]);
        if (strategy === 'alternating') {
          // An admin secret with a bad port: refused before the admin logs in.
          await w.setUser(username, password);
          const badAdmin = await h.createSecret({ ...w.admin.secret, port: 'abc' });
          const arn = await h.createSecret({ ...good, masterarn: badAdmin });
          const r = await h.rotate(arn);
          expect(r.succeeded).toBe(false);
          expect(failedStepCodes(h).at(-1)).toBe('SECRET_FORMAT');
          expect(ctx.rec.connects.filter((c) => c.username === w.admin.username)).toEqual([]);
        }
      });

      it('a fault at each Secrets Manager call of the rotation, then the service\'s retry: it converges and AWSCURRENT logs in', async () => {
        const ctx = await world({ attempts: 2 });
        const { h } = ctx;
        const probe = await secretFor(ctx, strategy, { tag: 'smp' });
        const clean = await h.rotate(probe.arn);
        expect(clean.error).toBeUndefined();
        const n = handlerCalls(clean.calls);
        expect(n).toBeGreaterThan(5);
        for (let i = 0; i < n; i++) {
          const { arn } = await secretFor(ctx, strategy, { tag: `sm${i}` });
          // calls[start] is RotateSecret itself; the handler's calls follow it.
          ctx.h.sm.failCallAt(h.sm.calls.length + 1 + i, 'InternalServiceError', 'Injected failure of this call.');
          const r = await h.rotate(arn);
          expect(r.error, `fault at Secrets Manager call ${i + 1} (${clean.calls.filter((c) => c !== 'RotateSecret')[i]})`).toBeUndefined();
          expect(r.attempts).toBe(2);
          await expectCurrentLogsIn(ctx, arn);
        }
      });

      it('a fault before and after each database call (connection reset), then the service\'s retry: it converges and AWSCURRENT logs in', async () => {
        const ctx = await world({ attempts: 2 });
        const { h, rec } = ctx;
        const probe = await secretFor(ctx, strategy, { tag: 'dbp' });
        const start = rec.calls.length;
        const clean = await h.rotate(probe.arn);
        expect(clean.error).toBeUndefined();
        const sequence = rec.calls.slice(start);
        expect(sequence.length).toBeGreaterThan(3);
        for (const when of ['before', 'after'] as const) {
          for (let i = 0; i < sequence.length; i++) {
            const { arn } = await secretFor(ctx, strategy, { tag: `db${when[0]}${i}` });
            rec.fault = { at: rec.calls.length + 1 + i, when };
            const r = await h.rotate(arn);
            expect(r.error, `fault ${when} database call ${i + 1} (${sequence[i]})`).toBeUndefined();
            expect(r.attempts).toBe(2);
            await expectCurrentLogsIn(ctx, arn);
          }
        }
        expect(DB_CALLS).toContain(sequence[0]);
      });

      const statementTitle = 'a lost connection at each statement (the fake\'s hook), then the service\'s retry: a half-done change converges and AWSCURRENT logs in';
      if (!target.statementFaults) {
        it.skip(`${statementTitle}: not on this target (no statement-level fault hook here; the engine-boundary faults above cover it)`, () => undefined);
      }
      // Registered only where the target can inject them (otherwise the skipped entry above says why).
      const itWithStatements = (target.statementFaults ? it : () => undefined) as typeof it;
      itWithStatements(statementTitle, async () => {
        const ctx = await world({ attempts: 2 });
        const { h } = ctx;
        const w = ctx.w as TargetWorld & Required<Pick<TargetWorld, 'statements'>>;
        expect(w.statements).toBeDefined();
        const probe = await secretFor(ctx, strategy, { tag: 'stp' });
        const start = w.statements.count();
        const clean = await h.rotate(probe.arn);
        expect(clean.error).toBeUndefined();
        const n = w.statements.count() - start;
        expect(n).toBeGreaterThanOrEqual(3); // at least the change and the two checks
        for (let i = 1; i <= n; i++) {
          const { arn } = await secretFor(ctx, strategy, { tag: `st${i}` });
          w.statements.failAt(i);
          const r = await h.rotate(arn);
          expect(r.error, `lost connection at statement ${i} of ${n}`).toBeUndefined();
          expect(r.attempts).toBe(2);
          await expectCurrentLogsIn(ctx, arn);
        }
      });
    });

    describe('single user: recovery from AWSPREVIOUS and its guards', () => {
      /** A secret rotated once, then its user's password set back out of band to `password` (AWSCURRENT no longer logs in). */
      async function strandedOnce(ctx: Ctx, fields: Record<string, unknown> = {}) {
        const s = await secretFor(ctx, 'single', { fields });
        await rotateOk(ctx, s.arn);
        return s;
      }

      it('AWSCURRENT refused, AWSPREVIOUS logs in: the rotation recovers with it and the new AWSCURRENT logs in', async () => {
        const ctx = await world();
        const { arn, username, password } = await strandedOnce(ctx);
        await ctx.w.setUser(username, password); // back to the AWSPREVIOUS password
        await rotateOk(ctx, arn);
        await expectCurrentLogsIn(ctx, arn);
        expect(await ctx.w.tryLogin(username, password), 'the stranded password was replaced').toBe(false);
        expect(ctx.rec.sent(password).filter((c) => c.username === username).length).toBeGreaterThan(0);
        const changed = logLines(ctx.h).filter((l) => l.message === 'changed own password').at(-1);
        expect(changed?.fields.loggedInWith).toBe('AWSPREVIOUS');
      });

      it.each([
        ['another user', (w: TargetWorld, v: Record<string, unknown>) => ({ ...v, username: w.userName('oth') })],
        ['another host', (_w: TargetWorld, v: Record<string, unknown>) => ({ ...v, host: 'elsewhere.invalid' })],
        ['another port', (_w: TargetWorld, v: Record<string, unknown>) => ({ ...v, port: 1 })],
      ])('an AWSPREVIOUS naming %s is ignored: its password is never sent, nothing changes', async (_what, mutate) => {
        const ctx = await world();
        const { h, w } = ctx;
        const { arn, username } = await strandedOnce(ctx);
        const cur = await h.current(arn);
        // The user's real password is now one only a version naming another user/endpoint holds.
        const foreign = w.password();
        h.sensitive(foreign);
        await h.client.send(new PutSecretValueCommand({
          SecretId: arn, ClientRequestToken: randomUUID(), VersionStages: ['AWSPREVIOUS'],
          SecretString: JSON.stringify(mutate(w, { ...cur.json, password: foreign })),
        }));
        await w.setUser(username, foreign);
        const r = await h.rotate(arn);
        expect(r.succeeded).toBe(false);
        expect(failedStepCodes(h).at(-1)).toBe('AUTH');
        expect(ctx.rec.sent(foreign), 'the foreign version\'s password was never tried').toEqual([]);
        expect((await h.current(arn)).versionId).toBe(cur.versionId);
        expect(await w.tryLogin(username, foreign)).toBe(true);
      });

      it('stale TLS settings on AWSPREVIOUS are overridden by AWSCURRENT\'s', async () => {
        const ctx = await world();
        const { h, w, rec } = ctx;
        const { arn, username } = await strandedOnce(ctx);
        const cur = await h.current(arn);
        const old = w.password();
        h.sensitive(old);
        const currentTlsOn = cur.json?.ssl !== false && cur.json?.ssl !== 'disable';
        await h.client.send(new PutSecretValueCommand({
          SecretId: arn, ClientRequestToken: randomUUID(), VersionStages: ['AWSPREVIOUS'],
          SecretString: JSON.stringify({ ...cur.json, password: old, ssl: currentTlsOn ? false : 'require', sslCa: undefined }),
        }));
        await w.setUser(username, old);
        const from = rec.connects.length;
        await rotateOk(ctx, arn);
        const attempts = rec.connects.slice(from);
        const currentLogin = attempts[0];
        const previousLogins = attempts.filter((c) => c.passwordHash === rec.sent(old)[0]?.passwordHash);
        expect(previousLogins.length).toBeGreaterThan(0);
        for (const c of previousLogins) expect(c.tls).toEqual(currentLogin.tls);
        expect(currentLogin.tls.enabled).toBe(currentTlsOn);
        await expectCurrentLogsIn(ctx, arn);
      });
    });

    describe('one error taxonomy: the same failure gives the same code on every engine', () => {
      /** A child secret for a new working user whose masterarn is `admin` (a whole admin secret value). */
      async function childWithAdmin(ctx: Ctx, admin: Record<string, unknown>) {
        const { h, w } = ctx;
        const username = w.userName('tax');
        const password = w.password();
        h.sensitive(password);
        await w.setUser(username, password);
        const masterarn = await h.createSecret(admin);
        const arn = await h.createSecret({ ...w.base, username, password, masterarn });
        return { arn, username, password };
      }

      async function expectNothingChanged(ctx: Ctx, arn: string, username: string, password: string, before: unknown) {
        const { h, w } = ctx;
        expect(await h.current(arn)).toEqual(before);
        expect(await w.tryLogin(username, password), 'AWSCURRENT still logs in').toBe(true);
        const pending = h.holderOf(arn, 'AWSPENDING');
        const p = (await h.version(arn, pending!)).json as { username: string; password: string };
        expect(await w.tryLogin(p.username, p.password), 'the pending user/password does not log in').toBe(false);
      }

      it('the admin secret\'s password is wrong: AUTH, and nothing changes', async () => {
        const ctx = await world();
        const wrong = ctx.w.password();
        ctx.h.sensitive(wrong);
        const { arn, username, password } = await childWithAdmin(ctx, { ...ctx.w.admin.secret, password: wrong });
        const before = await ctx.h.current(arn);
        const r = await ctx.h.rotate(arn);
        expect(r.succeeded).toBe(false);
        expect(failedStepCodes(ctx.h).at(-1)).toBe('AUTH');
        expect(r.error).toMatch(/admin secret/);
        expect(ctx.rec.calls.filter((c) => c === 'upsertAlternateUser')).toEqual([]);
        await expectNothingChanged(ctx, arn, username, password, before);
      });

      it('the admin is an ordinary login without the rights to manage users: PRIVILEGE, and nothing changes', async () => {
        const ctx = await world();
        const { w, h } = ctx;
        const weak = w.userName('weak');
        const weakPw = w.password();
        h.sensitive(weakPw);
        await w.setUser(weak, weakPw);
        // Where this engine's users live (MongoDB: the application database) is where the weak admin authenticates.
        const scope = w.base.dbname === undefined ? {} : { dbname: w.base.dbname };
        const { arn, username, password } = await childWithAdmin(ctx, { ...w.admin.secret, ...scope, username: weak, password: weakPw });
        const before = await h.current(arn);
        const r = await h.rotate(arn);
        expect(r.succeeded).toBe(false);
        expect(failedStepCodes(h).at(-1), r.error).toBe('PRIVILEGE');
        await expectNothingChanged(ctx, arn, username, password, before);
      });
    });

    describe('alternating users: the admin is used only for a working pair, and never on itself', () => {
      it('confused deputy: AWSCURRENT does not log in, so the admin secret is never used and nothing changes', async () => {
        const ctx = await world();
        const { h, w, rec } = ctx;
        const { arn, username } = await secretFor(ctx, 'alternating');
        const before = await h.current(arn);
        const other = w.password();
        h.sensitive(other);
        await w.setUser(username, other); // AWSCURRENT's password no longer works
        const r = await h.rotate(arn);
        expect(r.succeeded).toBe(false);
        expect(failedStepCodes(h).at(-1)).toBe('AUTH');
        expect(r.error).toMatch(/refusing to use the admin secret/);
        expect(rec.sent(w.admin.password), 'the admin never logged in').toEqual([]);
        const masterarn = String(before.json?.masterarn);
        expect(h.sm.calls.some((c) => c.operation === 'GetSecretValue' && c.secretId === masterarn), 'the admin secret was never read').toBe(false);
        expect(rec.calls.filter((c) => c === 'upsertAlternateUser' || c === 'checkAlternateUser')).toEqual([]);
        expect(await h.current(arn)).toEqual(before);
        const pending = h.holderOf(arn, 'AWSPENDING');
        const p = (await h.version(arn, pending!)).json as { username: string; password: string };
        expect(await w.tryLogin(p.username, p.password)).toBe(false);
      });

      it('the admin never resets its own password: a child secret whose alternate is the admin user is refused', async () => {
        const ctx = await world();
        const { h, w, rec } = ctx;
        const adminArn = await h.createSecret(w.admin.secret);
        // A working login whose alternate is the admin user (admin_clone -> admin).
        const decoy = ctx.rotator.alternateUsername(w.admin.username);
        const decoyPw = w.password();
        h.sensitive(decoyPw);
        await w.setUser(decoy, decoyPw);
        const arn = await h.createSecret({ ...w.base, ...(w.adminScope ?? {}), username: decoy, password: decoyPw, masterarn: adminArn });
        const before = await h.current(arn);
        const r = await h.rotate(arn);
        expect(r.succeeded).toBe(false);
        expect(['STATE', 'PRIVILEGE']).toContain(failedStepCodes(h).at(-1));
        expect(rec.calls).not.toContain('upsertAlternateUser');
        expect(await w.tryLogin(w.admin.username, w.admin.password), 'the admin keeps its password').toBe(true);
        const pending = h.holderOf(arn, 'AWSPENDING');
        const p = (await h.version(arn, pending!)).json as { password: string };
        expect(await w.tryLogin(w.admin.username, p.password)).toBe(false);
        expect(await h.current(arn)).toEqual(before);
      });
    });
  });
}
