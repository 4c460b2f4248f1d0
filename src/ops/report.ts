/**
 * What a preflight reports: a list of checks, each passed, failed, warned about or skipped, with
 * what to do about it. Check texts are built from field names, usernames, hosts, ARNs, engine
 * names and typed error messages only, never from a secret value; the CLI scrubs them again.
 */
import { describeError, type ErrorCode, RotationError } from '../errors';

export type CheckStatus = 'pass' | 'fail' | 'warn' | 'skip';

export interface Check {
  /** Stable id, e.g. "current.login", "admin.privileges.create-role". */
  id: string;
  /** What is checked, e.g. "AWSCURRENT logs in". */
  title: string;
  status: CheckStatus;
  /** What was found. */
  detail: string;
  /** What to do (failures and warnings). */
  remedy?: string;
  /** The failure class, for failures. */
  code?: ErrorCode;
}

export interface PreflightReport {
  secretId: string;
  engine?: string;
  strategy?: 'single' | 'alternating';
  checks: Check[];
  /** True when no check failed (warnings allowed). */
  ok: boolean;
}

export const pass = (id: string, title: string, detail: string): Check => ({ id, title, status: 'pass', detail });
export const warn = (id: string, title: string, detail: string, remedy?: string): Check => ({ id, title, status: 'warn', detail, remedy });
export const skip = (id: string, title: string, detail: string): Check => ({ id, title, status: 'skip', detail });
export const fail = (id: string, title: string, detail: string, code: ErrorCode, remedy?: string): Check => ({ id, title, status: 'fail', detail, remedy, code });

/** A failed check from a thrown error: its code, its message without the remedy, and its remedy. */
export function failFrom(id: string, title: string, err: unknown, fallback: ErrorCode = 'CONFIG', remedy?: string): Check {
  if (err instanceof RotationError) {
    const message = err.remedy && err.message.endsWith(err.remedy) ? err.message.slice(0, -err.remedy.length).trimEnd() : err.message;
    return fail(id, title, message, err.code, err.remedy ?? remedy);
  }
  const name = err instanceof Error && err.name && err.name !== 'Error' ? `${err.name}: ` : '';
  return fail(id, title, `${name}${describeError(err)}`, fallback, remedy);
}

/**
 * The error a preflight run raises when any check failed: every failed check, in order, with its
 * remedy. Its code is the first failure's.
 */
export class PreflightError extends RotationError {
  override name = 'PreflightError';
  readonly checks: Check[];

  constructor(report: PreflightReport) {
    const failed = report.checks.filter((c) => c.status === 'fail');
    const list = failed
      .map((c, i) => `(${i + 1}) [${c.code ?? 'CONFIG'}] ${c.title}: ${c.detail}${c.remedy ? ` Remedy: ${c.remedy}` : ''}`)
      .join(' ');
    super(failed[0]?.code ?? 'CONFIG', `Preflight of ${report.secretId} found ${failed.length} problem(s); nothing was changed. ${list}`, {
      remedy: 'Fix each problem, then run the test again (RotateSecret with RotateImmediately=false, or `npx rotation-lambdas preflight --secret-id <arn>`).',
    });
    this.checks = report.checks;
  }
}

const MARK: Record<CheckStatus, string> = { pass: 'PASS', fail: 'FAIL', warn: 'WARN', skip: 'SKIP' };

/** A readable, multi-line rendering of checks. */
export function formatChecks(checks: readonly Check[]): string {
  const lines: string[] = [];
  for (const c of checks) {
    lines.push(`  [${MARK[c.status]}] ${c.title}${c.code ? ` (${c.code})` : ''}`);
    lines.push(`         ${c.detail}`);
    if (c.remedy && (c.status === 'fail' || c.status === 'warn')) lines.push(`         -> ${c.remedy}`);
  }
  return lines.join('\n');
}
