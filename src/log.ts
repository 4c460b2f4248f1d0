import { Redactor } from './redact';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** Where log lines go. The default writes one JSON object per line to stdout (CloudWatch). */
export type LogSink = (line: string) => void;

export const stdoutSink: LogSink = (line) => {
  process.stdout.write(line + '\n');
};

export type LogFields = Record<string, string | number | boolean | undefined | null | string[]>;

/**
 * The keys every line starts with, as Lambda's JSON log format and its log-level filtering
 * (`LoggingConfig.ApplicationLogLevel`) read them: `timestamp` (ISO 8601), `level` (upper case:
 * DEBUG, INFO, WARN, ERROR) and `message`. Context and fields never overwrite them.
 */
const CORE_KEYS = new Set(['timestamp', 'level', 'message']);

/**
 * Structured JSON logger. Every line carries the invocation's context (request id, cold start,
 * secret ARN, step, version id; field names as Powertools for AWS Lambda writes them) and is
 * scrubbed of every registered secret value before it is written, keys included.
 * Fields must be plain metadata: never pass a secret value as a field.
 */
export class Logger {
  constructor(
    private readonly sink: LogSink = stdoutSink,
    private readonly context: LogFields = {},
    private readonly redactor: Redactor = new Redactor(),
    private readonly minLevel: LogLevel = levelFromEnv(process.env),
  ) {}

  child(fields: LogFields): Logger {
    return new Logger(this.sink, { ...this.context, ...fields }, this.redactor, this.minLevel);
  }

  debug(msg: string, fields?: LogFields): void {
    this.write('debug', msg, fields);
  }
  info(msg: string, fields?: LogFields): void {
    this.write('info', msg, fields);
  }
  warn(msg: string, fields?: LogFields): void {
    this.write('warn', msg, fields);
  }
  error(msg: string, fields?: LogFields): void {
    this.write('error', msg, fields);
  }

  private write(level: LogLevel, msg: string, fields?: LogFields): void {
    if (LEVELS[level] < LEVELS[this.minLevel]) return;
    const record: Record<string, unknown> = { timestamp: new Date().toISOString(), level: level.toUpperCase(), message: msg };
    for (const source of [this.context, fields ?? {}]) {
      for (const [k, v] of Object.entries(source)) if (!CORE_KEYS.has(k)) record[k] = v;
    }
    // Each string (keys too) is scrubbed before it is encoded: the raw forms of a secret are
    // found even inside a field holding serialised JSON, and the line stays valid JSON.
    const scrubbed: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(record)) scrubbed[this.redactor.scrub(k)] = v;
    this.sink(JSON.stringify(scrubbed, (_key, value: unknown) => (typeof value === 'string' ? this.redactor.scrub(value) : value)));
  }
}

/**
 * A level name as a level: `debug`, `info`, `warn`, `error` in any case, and Lambda's `TRACE`
 * (as debug) and `FATAL` (as error). Anything else is undefined.
 */
export function levelOf(v: string | undefined): LogLevel | undefined {
  const l = (v ?? '').trim().toLowerCase();
  if (l === 'trace') return 'debug';
  if (l === 'fatal') return 'error';
  return l in LEVELS ? (l as LogLevel) : undefined;
}

/** LOG_LEVEL's value as a level; anything else is "info". */
export function parseLevel(v: string | undefined): LogLevel {
  return levelOf(v) ?? 'info';
}

/**
 * The minimum level from the environment: `LOG_LEVEL` when set to a level (an explicit override),
 * else `AWS_LAMBDA_LOG_LEVEL` (which Lambda sets from `LoggingConfig.ApplicationLogLevel`), else info.
 */
export function levelFromEnv(env: Record<string, string | undefined>): LogLevel {
  return levelOf(env.LOG_LEVEL) ?? levelOf(env.AWS_LAMBDA_LOG_LEVEL) ?? 'info';
}
