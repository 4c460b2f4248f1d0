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
 * Structured JSON logger. Every line carries the invocation's context (secret ARN, step,
 * version id) and is scrubbed of every registered secret value before it is written.
 * Fields must be plain metadata: never pass a secret value as a field.
 */
export class Logger {
  constructor(
    private readonly sink: LogSink = stdoutSink,
    private readonly context: LogFields = {},
    private readonly redactor: Redactor = new Redactor(),
    private readonly minLevel: LogLevel = parseLevel(process.env.LOG_LEVEL),
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
    const record = { time: new Date().toISOString(), level, msg, ...this.context, ...fields };
    // Each string is scrubbed before it is encoded: the raw forms of a secret are found even
    // inside a field holding serialised JSON, and the line stays valid JSON.
    this.sink(JSON.stringify(record, (_key, value: unknown) => (typeof value === 'string' ? this.redactor.scrub(value) : value)));
  }
}

/** LOG_LEVEL's value as a level; anything else is "info". */
export function parseLevel(v: string | undefined): LogLevel {
  const l = (v ?? '').toLowerCase();
  return l in LEVELS ? (l as LogLevel) : 'info';
}
