/**
 * Status and repair of a secret's rotation state.
 *
 * status: the versions with their labels and creation dates, the rotation configuration, and a
 * diagnosis: is there a stale AWSPENDING (on a version other than AWSCURRENT: the cause of "A
 * previous rotation isn't complete"), does that pending value log in, does AWSCURRENT log in.
 *
 * repair, from that diagnosis (every decision explained; nothing changes without `apply`):
 * - AWSCURRENT logs in: remove the stale AWSPENDING label (the next rotation starts afresh);
 * - AWSCURRENT is refused (AUTH) and the pending value logs in: finish the rotation, i.e. move
 *   AWSCURRENT to the pending version (AWSPREVIOUS follows), then remove its AWSPENDING label;
 * - otherwise (neither logs in, or the server cannot be reached so nothing can be told): change
 *   nothing and say so.
 * A pending value is only ever promoted when it differs from AWSCURRENT in nothing but the
 * username (single user: not even that; alternating: the pair's other user) and the password,
 * exactly as createSecret makes it, so a hand-written AWSPENDING naming another host, TLS mode or
 * admin secret is never promoted. Label moves name the version they take the label from, so a
 * rotation that moved a label meanwhile makes the move fail instead of undoing it.
 */
import { type DescribeSecretResponse, ListSecretVersionIdsCommand, UpdateSecretVersionStageCommand } from '@aws-sdk/client-secrets-manager';
import type { DatabaseRotator } from '../db/database-rotator';
import { type DbSecret, strategyOf } from '../db/secret';
import { describeError, type ErrorCode, RotationError } from '../errors';
import type { Logger } from '../log';
import type { Env } from '../password';
import { AWSCURRENT, AWSPENDING, AWSPREVIOUS, type SecretStore } from '../secrets';

export interface VersionInfo {
  versionId: string;
  stages: string[];
  createdDate?: string;
}

export interface LoginProbe {
  /** 'ok', or the failure class; 'skipped' when not tried. */
  result: 'ok' | ErrorCode | 'skipped';
  detail: string;
}

export interface RotationConfig {
  rotationEnabled: boolean;
  lambdaArn?: string;
  rules?: { automaticallyAfterDays?: number; duration?: string; scheduleExpression?: string };
  lastRotatedDate?: string;
  nextRotationDate?: string;
}

export interface StatusReport {
  secretId: string;
  arn?: string;
  name?: string;
  engine?: string;
  strategy?: 'single' | 'alternating';
  rotation: RotationConfig;
  versions: VersionInfo[];
  currentVersionId?: string;
  pendingVersionId?: string;
  /** AWSPENDING is on a version other than AWSCURRENT. */
  stalePending: boolean;
  /** For a stale AWSPENDING: whether the version holds a value (RotateSecret's placeholder has none). */
  pendingHasValue?: boolean;
  current: LoginProbe;
  pending?: LoginProbe;
  /** Tried only when AWSCURRENT does not log in: does AWSPREVIOUS (information only; repair never moves it back). */
  previous?: LoginProbe;
  /** Why the pending value may not be promoted, when it may not. */
  pendingIneligible?: string;
  diagnosis: string[];
  /** No stale AWSPENDING and AWSCURRENT logs in. */
  ok: boolean;
}

export interface StatusContext {
  secretId: string;
  /** A store whose token is the stale AWSPENDING version, when there is one (see storeToken). */
  secrets: SecretStore;
  metadata: DescribeSecretResponse;
  log: Logger;
  env: Env;
}

/** The version ids holding AWSCURRENT and AWSPENDING. */
export function holders(metadata: DescribeSecretResponse): { current?: string; pending?: string } {
  let current: string | undefined;
  let pending: string | undefined;
  for (const [id, stages] of Object.entries(metadata.VersionIdsToStages ?? {})) {
    if (stages.includes(AWSCURRENT)) current = id;
    if (stages.includes(AWSPENDING)) pending = id;
  }
  return { current, pending };
}

const iso = (d: Date | undefined): string | undefined => (d instanceof Date && !Number.isNaN(d.getTime()) ? d.toISOString() : undefined);

/** Every labelled version with its creation date (ListSecretVersionIds, every page). */
export async function listVersions(secrets: SecretStore, metadata: DescribeSecretResponse): Promise<VersionInfo[]> {
  const created = new Map<string, string | undefined>();
  let next: string | undefined;
  do {
    const out = await secrets.client.send(new ListSecretVersionIdsCommand({ SecretId: secrets.secretId, NextToken: next, MaxResults: 100 }));
    for (const v of out.Versions ?? []) if (v.VersionId) created.set(v.VersionId, iso(v.CreatedDate));
    next = out.NextToken;
  } while (next);
  return Object.entries(metadata.VersionIdsToStages ?? {})
    .map(([versionId, stages]) => ({ versionId, stages: [...stages], createdDate: created.get(versionId) }))
    .sort((a, b) => (a.createdDate ?? '').localeCompare(b.createdDate ?? ''));
}

/**
 * The status. `rotator` is undefined when no rotator could be chosen (AWSCURRENT unreadable, or an
 * engine no built-in rotator serves; `rotatorError` says why): versions, configuration and labels
 * are still reported, and no login is tried.
 */
export async function gatherStatus<C>(rotator: DatabaseRotator<C> | undefined, ctx: StatusContext, rotatorError?: unknown): Promise<StatusReport> {
  const m = ctx.metadata;
  const { current: currentId, pending: pendingId } = holders(m);
  const report: StatusReport = {
    secretId: ctx.secretId,
    arn: m.ARN,
    name: m.Name,
    rotation: {
      rotationEnabled: m.RotationEnabled === true,
      lambdaArn: m.RotationLambdaARN,
      rules: m.RotationRules
        ? { automaticallyAfterDays: m.RotationRules.AutomaticallyAfterDays, duration: m.RotationRules.Duration, scheduleExpression: m.RotationRules.ScheduleExpression }
        : undefined,
      lastRotatedDate: iso(m.LastRotatedDate),
      nextRotationDate: iso(m.NextRotationDate),
    },
    versions: await listVersions(ctx.secrets, m),
    currentVersionId: currentId,
    pendingVersionId: pendingId,
    stalePending: pendingId !== undefined && pendingId !== currentId,
    current: { result: 'skipped', detail: 'not tried' },
    diagnosis: [],
    ok: false,
  };
  const d = report.diagnosis;

  // AWSCURRENT
  let current: DbSecret | undefined;
  try {
    if (!rotator) throw rotatorError ?? new Error('no rotator for this secret');
    current = rotator.parse(await ctx.secrets.current(), AWSCURRENT, ctx);
    report.engine = current.engine;
    report.strategy = strategyOf(current);
    report.current = await probe(rotator, current, AWSCURRENT, ctx);
  } catch (err) {
    report.current = { result: err instanceof RotationError ? err.code : 'SECRET_FORMAT', detail: describeError(err) };
  }
  d.push(
    report.current.result === 'ok'
      ? `AWSCURRENT (version ${currentId}) logs in.`
      : `AWSCURRENT (version ${currentId ?? 'none'}) does NOT log in: [${report.current.result}] ${report.current.detail}`,
  );

  // AWSPREVIOUS, when AWSCURRENT is refused: worth knowing, never acted on.
  if (rotator && current && report.current.result === 'AUTH') {
    const prevId = Object.entries(m.VersionIdsToStages ?? {}).find(([, st]) => st.includes(AWSPREVIOUS))?.[0];
    const raw = prevId ? await ctx.secrets.previous().catch(() => undefined) : undefined;
    if (prevId && raw !== undefined) {
      let why: string | undefined;
      let previous: DbSecret | undefined;
      try {
        previous = rotator.parse(raw, AWSPREVIOUS, ctx);
        why = ineligible(rotator, current, previous);
      } catch (err) {
        why = `it is not a valid secret (${describeError(err)})`;
      }
      report.previous = why ? { result: 'skipped', detail: `not tried: ${why}` } : await probe(rotator, previous!, AWSPREVIOUS, ctx);
      if (report.previous.result === 'ok') {
        d.push(
          `AWSPREVIOUS (version ${prevId}) still logs in. repair never moves labels back; if no rotation is pending and you want it back: ` +
            `aws secretsmanager update-secret-version-stage --secret-id <arn> --version-stage AWSCURRENT --move-to-version-id ${prevId} --remove-from-version-id ${currentId}`,
        );
      } else {
        d.push(`AWSPREVIOUS (version ${prevId}) does not log in either: [${report.previous.result}] ${report.previous.detail}`);
      }
    }
  }

  // AWSPENDING
  if (!report.stalePending) {
    d.push(pendingId ? 'AWSPENDING is on the AWSCURRENT version (a finished rotation): not stale.' : 'No AWSPENDING label: no rotation is in progress or left behind.');
  } else {
    d.push(
      `AWSPENDING is on version ${pendingId}, not on AWSCURRENT: a rotation started and did not finish. Until this is resolved, ` +
        'RotateSecret fails with "A previous rotation isn\'t complete" (Secrets Manager retries the same rotation).',
    );
    const raw = await ctx.secrets.pending().catch((err: unknown) => {
      report.pending = { result: err instanceof RotationError ? err.code : 'CONFIG', detail: describeError(err) };
      return undefined;
    });
    report.pendingHasValue = raw !== undefined;
    if (report.pending) {
      d.push(`The AWSPENDING value could not be read: ${report.pending.detail}`);
    } else if (raw === undefined) {
      report.pending = { result: 'skipped', detail: 'the version has no value' };
      d.push('The AWSPENDING version has no value: RotateSecret\'s placeholder, left when createSecret never stored one (or by a RotateImmediately=false test run).');
    } else if (current && rotator) {
      let pending: DbSecret | undefined;
      try {
        pending = rotator.parse(raw, AWSPENDING, ctx);
      } catch (err) {
        report.pendingIneligible = `it is not a valid secret (${describeError(err)})`;
      }
      if (pending) report.pendingIneligible = ineligible(rotator, current, pending);
      if (report.pendingIneligible) {
        report.pending = { result: 'skipped', detail: `not tried: ${report.pendingIneligible}` };
        d.push(`The AWSPENDING value will never be promoted: ${report.pendingIneligible}.`);
      } else {
        report.pending = await probe(rotator, pending!, AWSPENDING, ctx);
        d.push(
          report.pending.result === 'ok'
            ? `The AWSPENDING value (user "${pending!.username}") logs in: setSecret had changed the password${report.strategy === 'single' ? ' (in single-user rotation AWSCURRENT then stops working)' : ''}.`
            : `The AWSPENDING value (user "${pending!.username}") does NOT log in: [${report.pending.result}] ${report.pending.detail}`,
        );
      }
    } else {
      report.pending = { result: 'skipped', detail: 'not tried: AWSCURRENT is not a valid secret to compare it with' };
    }
  }
  report.ok = !report.stalePending && report.current.result === 'ok';
  return report;
}

/**
 * Why a pending value may not be promoted: anything but the username (alternating: the pair's
 * other user) and the password differs from AWSCURRENT. undefined when it may.
 */
export function ineligible<C>(rotator: DatabaseRotator<C>, current: DbSecret, pending: DbSecret): string | undefined {
  const { username: cu, password: _cp, ...restCurrent } = current;
  const { username: pu, password: _pp, ...restPending } = pending;
  const single = strategyOf(current) === 'single';
  if (single ? pu !== cu : pu !== cu && pu !== rotator.alternateUsername(cu)) {
    return single
      ? `it names user "${pu}" but AWSCURRENT names "${cu}" (single-user rotation never changes the user)`
      : `it names user "${pu}", which is neither "${cu}" nor its alternate "${rotator.alternateUsername(cu)}"`;
  }
  const keys = [...new Set([...Object.keys(restCurrent), ...Object.keys(restPending)])];
  const differ = keys.filter((k) => JSON.stringify(restCurrent[k]) !== JSON.stringify(restPending[k]));
  if (differ.length) {
    return `its ${differ.map((k) => `"${k}"`).join(', ')} differ${differ.length === 1 ? 's' : ''} from AWSCURRENT (createSecret only changes the username and password)`;
  }
  return undefined;
}

async function probe<C>(rotator: DatabaseRotator<C>, secret: DbSecret, label: string, ctx: StatusContext): Promise<LoginProbe> {
  try {
    const login = await rotator.login(secret, label, ctx);
    if (!login.ok) return { result: login.failure.code, detail: login.failure.reason };
    try {
      await rotator.calls(ctx).check(login.conn);
    } finally {
      await rotator.close(login.conn, ctx.log);
    }
    return { result: 'ok', detail: `"${secret.username}" logged in and ran the check query` };
  } catch (err) {
    return { result: err instanceof RotationError ? err.code : 'CONFIG', detail: describeError(err) };
  }
}

export type RepairAction =
  | { kind: 'none' }
  | { kind: 'remove-pending'; versionId: string }
  | { kind: 'finish'; versionId: string; fromVersionId: string };

export interface RepairPlan {
  action: RepairAction;
  /** Why, step by step. */
  reasons: string[];
  /** True when the state is (or after the action will be) healthy. */
  resolves: boolean;
}

/** What repair would do, and why. */
export function planRepair(s: StatusReport): RepairPlan {
  const reasons: string[] = [];
  if (!s.stalePending) {
    reasons.push('There is no stale AWSPENDING label, so there is nothing to finish or clean up.');
    if (s.current.result !== 'ok') {
      reasons.push(
        `AWSCURRENT does not log in ([${s.current.result}]), and no pending value exists to fall back on: repair changes nothing. ` +
          'Put the working password in the secret yourself (if you know it), or reset the password on the server and store it.',
      );
      return { action: { kind: 'none' }, reasons, resolves: false };
    }
    return { action: { kind: 'none' }, reasons, resolves: true };
  }
  const pendingId = s.pendingVersionId!;
  if (s.current.result === 'ok') {
    reasons.push(
      `AWSCURRENT logs in, so the applications' credential works: the unfinished rotation's AWSPENDING label is removed from version ${pendingId} ` +
        '(its value is kept, unlabelled), and the next rotation starts afresh with a new version.',
    );
    return { action: { kind: 'remove-pending', versionId: pendingId }, reasons, resolves: true };
  }
  if (s.current.result !== 'AUTH') {
    reasons.push(
      `AWSCURRENT could not be tested ([${s.current.result}] — not a rejected password): whether it or the pending value is right cannot be told from here, ` +
        'so repair changes nothing. Fix the connection problem (run where the database is reachable) and run repair again.',
    );
    return { action: { kind: 'none' }, reasons, resolves: false };
  }
  reasons.push('AWSCURRENT\'s password is rejected by the server.');
  if (s.pending?.result === 'ok' && s.currentVersionId) {
    reasons.push(
      `The AWSPENDING value of version ${pendingId} logs in, so setSecret had changed the password and a later step failed: ` +
        `finish the rotation by moving AWSCURRENT from version ${s.currentVersionId} to ${pendingId} (AWSPREVIOUS follows), then remove its AWSPENDING label.`,
    );
    return { action: { kind: 'finish', versionId: pendingId, fromVersionId: s.currentVersionId }, reasons, resolves: true };
  }
  const why = s.pendingHasValue === false ? 'the AWSPENDING version has no value' : s.pendingIneligible ? `the AWSPENDING value may not be promoted (${s.pendingIneligible})` : `the AWSPENDING value does not log in either ([${s.pending?.result ?? 'skipped'}])`;
  reasons.push(
    `And ${why}: neither credential works, so repair changes nothing. ` +
      'Reset the user\'s password on the server (as an administrator) and store it as AWSCURRENT, then run repair again to clear the stale label.',
  );
  return { action: { kind: 'none' }, reasons, resolves: false };
}

/** Carry out a plan. Each label move names the version it takes the label from. Returns what was done. */
export async function applyRepair(secrets: SecretStore, plan: RepairPlan): Promise<string[]> {
  const a = plan.action;
  const done: string[] = [];
  const send = (input: { VersionStage: string; MoveToVersionId?: string; RemoveFromVersionId?: string }) =>
    secrets.client.send(new UpdateSecretVersionStageCommand({ SecretId: secrets.secretId, ...input }));
  if (a.kind === 'remove-pending') {
    await send({ VersionStage: AWSPENDING, RemoveFromVersionId: a.versionId });
    done.push(`Removed AWSPENDING from version ${a.versionId}.`);
  } else if (a.kind === 'finish') {
    await send({ VersionStage: AWSCURRENT, MoveToVersionId: a.versionId, RemoveFromVersionId: a.fromVersionId });
    done.push(`Moved AWSCURRENT from version ${a.fromVersionId} to ${a.versionId}.`);
    await send({ VersionStage: AWSPENDING, RemoveFromVersionId: a.versionId });
    done.push(`Removed AWSPENDING from version ${a.versionId}.`);
  }
  return done;
}
