/**
 * Reading the handler's log lines in tests, in one place: the line format is changing from
 * `{time, level: 'info', msg}` to Lambda's `{timestamp, level: 'INFO', message}`; tests that go
 * through these helpers accept both.
 */
import type { RotationHarness } from './rotation-harness';

export interface LogLine {
  level: string;
  message: string;
  fields: Record<string, unknown>;
}

export function logLines(h: Pick<RotationHarness, 'logs'>): LogLine[] {
  return h.logs.map((raw) => {
    const r = JSON.parse(raw) as Record<string, unknown>;
    return { level: String(r.level ?? '').toLowerCase(), message: String(r.message ?? r.msg ?? ''), fields: r };
  });
}

/** The shared error code (errorCode) of every failed step, in order. */
export function failedStepCodes(h: Pick<RotationHarness, 'logs'>): unknown[] {
  return logLines(h).filter((l) => l.message === 'step failed').map((l) => l.fields.errorCode);
}
