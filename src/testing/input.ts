/**
 * Request validation for the Secrets Manager double. Members are checked against the service
 * model's constraints and reported the way AWS reports them ("1 validation error detected: Value
 * at 'member' failed to satisfy constraint: ..."), never quoting the value itself.
 */
import { SecretsManagerError } from './wire';

export type Input = Record<string, unknown>;

export interface Tag {
  Key: string;
  Value?: string;
}

export interface RotationRules {
  AutomaticallyAfterDays?: number;
  Duration?: string;
  ScheduleExpression?: string;
}

export interface SecretValue {
  secretString?: string;
  /** Base64, as on the wire. */
  secretBinary?: string;
}

export function err(type: string, message: string): SecretsManagerError {
  return new SecretsManagerError(type, message);
}

export function invalid(member: string, constraint: string): SecretsManagerError {
  const field = member.charAt(0).toLowerCase() + member.slice(1);
  return err('ValidationException', `1 validation error detected: Value at '${field}' failed to satisfy constraint: ${constraint}`);
}

function wrongType(member: string): SecretsManagerError {
  return err('SerializationException', `The value of ${member} has the wrong JSON type.`);
}

export function optString(input: Input, key: string, min: number, max: number): string | undefined {
  const v = input[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw wrongType(key);
  if (v.length < min) throw invalid(key, `Member must have length greater than or equal to ${min}`);
  if (v.length > max) throw invalid(key, `Member must have length less than or equal to ${max}`);
  return v;
}

export function reqString(input: Input, key: string, min: number, max: number): string {
  const v = optString(input, key, min, max);
  if (v === undefined) throw invalid(key, 'Member must not be null');
  return v;
}

export function optBool(input: Input, key: string): boolean | undefined {
  const v = input[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw wrongType(key);
  return v;
}

export function optInt(input: Input, key: string, min: number, max: number): number | undefined {
  const v = input[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw wrongType(key);
  if (v < min) throw invalid(key, `Member must have value greater than or equal to ${min}`);
  if (v > max) throw invalid(key, `Member must have value less than or equal to ${max}`);
  return v;
}

/** A list of strings, de-duplicated (labels are a set). */
export function optStringList(input: Input, key: string, minItems: number, maxItems: number, itemMin: number, itemMax: number): string[] | undefined {
  const v = input[key];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw wrongType(key);
  if (v.length < minItems) throw invalid(key, `Member must have length greater than or equal to ${minItems}`);
  if (v.length > maxItems) throw invalid(key, `Member must have length less than or equal to ${maxItems}`);
  for (const s of v as string[]) {
    if (s.length < itemMin || s.length > itemMax) {
      throw invalid(key, `Member must satisfy constraint: [Member must have length less than or equal to ${itemMax}, Member must have length greater than or equal to ${itemMin}]`);
    }
  }
  return [...new Set(v as string[])];
}

export function readTags(input: Input, key: string): Tag[] | undefined {
  const v = input[key];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw wrongType(key);
  return v.map((t: unknown) => {
    if (!t || typeof t !== 'object') throw wrongType(key);
    const tag = t as Input;
    return { Key: reqString(tag, 'Key', 1, 128), Value: optString(tag, 'Value', 0, 256) };
  });
}

/** SecretString or SecretBinary (base64 on the wire), never both; undefined when neither. */
export function readValue(input: Input): SecretValue | undefined {
  const s = optString(input, 'SecretString', 1, 65_536);
  const b = optString(input, 'SecretBinary', 1, 90_000);
  if (s !== undefined && b !== undefined) {
    throw err('InvalidParameterException', "You can't specify both a binary secret value and a string secret value in the same secret.");
  }
  if (b !== undefined) {
    const bytes = Buffer.from(b, 'base64');
    if (bytes.length < 1 || bytes.length > 65_536) throw invalid('SecretBinary', 'Member must have length less than or equal to 65536');
    return { secretBinary: bytes.toString('base64') };
  }
  return s === undefined ? undefined : { secretString: s };
}

export function readRotationRules(i: Input): RotationRules | undefined {
  const raw = i.RotationRules;
  if (raw === undefined || raw === null) return undefined;
  if (typeof raw !== 'object' || Array.isArray(raw)) throw wrongType('RotationRules');
  const r = raw as Input;
  const rules: RotationRules = {};
  const days = optInt(r, 'AutomaticallyAfterDays', 1, 1000);
  const duration = optString(r, 'Duration', 2, 3);
  const schedule = optString(r, 'ScheduleExpression', 1, 256);
  if (days !== undefined) rules.AutomaticallyAfterDays = days;
  if (duration !== undefined) {
    if (!/^[0-9h]+$/.test(duration)) throw invalid('RotationRules.Duration', 'Member must satisfy regular expression pattern: [0-9h]+');
    rules.Duration = duration;
  }
  if (schedule !== undefined) {
    if (!/^[0-9A-Za-z()#?*\-/, ]+$/.test(schedule)) {
      throw invalid('RotationRules.ScheduleExpression', 'Member must satisfy regular expression pattern: [0-9A-Za-z\\(\\)#\\?\\*\\-\\/, ]+');
    }
    rules.ScheduleExpression = schedule;
  }
  if (days !== undefined && schedule !== undefined) {
    // Unverified text: the API documents the two as alternatives.
    throw err('InvalidParameterException', 'Specify either AutomaticallyAfterDays or ScheduleExpression in RotationRules, not both.');
  }
  return rules;
}
