/**
 * Process plumbing shared by the throwaway database servers (postgres.ts, mariadb.ts) of the
 * tests and the local demo: the system user a server runs as, its private temporary directory,
 * running its tools, a free port, waiting until it accepts connections, and never leaving it
 * behind when the process exits. No vitest imports here.
 */
import { execFile, execFileSync } from 'node:child_process';
import { accessSync, chmodSync, chownSync, constants, mkdtempSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

/** How a throwaway server is started (startPostgres, startMariaDb). */
export interface StartServerOptions {
  /** Progress messages (default: none). */
  log?: (message: string) => void;
  /** Milliseconds to wait for the server to accept connections (default 60000). */
  startTimeoutMs?: number;
}

export interface SystemUser {
  name: string;
  uid: number;
  gid: number;
}

/**
 * The system user a server must run as when we are root (PostgreSQL and MariaDB refuse to run
 * as root), else undefined: the server runs as ourselves. `pkg` names the Debian package that
 * creates the user, for the error message.
 */
export function serverOwner(name: string, pkg: string): SystemUser | undefined {
  if (process.getuid?.() !== 0) return undefined;
  try {
    const id = (flag: string) => Number(execFileSync('id', [flag, name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
    return { name, uid: id('-u'), gid: id('-g') };
  } catch {
    throw new Error(`The system user "${name}" does not exist (the ${pkg} package creates it).`);
  }
}

/** Give `paths` to the server's user (nothing to do when it runs as ourselves). */
export function chownTo(owner: SystemUser | undefined, ...paths: string[]): void {
  if (owner) for (const p of paths) chownSync(p, owner.uid, owner.gid);
}

/** A fresh directory under os.tmpdir() that only the server's user may enter. */
export function serverRoot(prefix: string, owner: SystemUser | undefined): string {
  const root = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(root, 0o700);
  chownTo(owner, root);
  return root;
}

/** `file args` as `user` (through runuser), or as ourselves. */
export function commandAs(user: SystemUser | undefined, file: string, args: string[]): [string, string[]] {
  return user ? ['runuser', ['-u', user.name, '--', file, ...args]] : [file, args];
}

export interface RunOptions {
  cwd: string;
  /** Added to process.env. */
  env?: Record<string, string>;
  /** Run as this user (runuser). */
  user?: SystemUser;
}

/** Run a tool to completion; its stdout, or an error carrying its output. */
export function runFile(file: string, args: string[], options: RunOptions): Promise<string> {
  const [cmd, argv] = commandAs(options.user, file, args);
  return new Promise((resolve, reject) => {
    execFile(cmd, argv, { cwd: options.cwd, env: { ...process.env, ...options.env }, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${file.split('/').pop()} failed: ${err.message}\n${stdout}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

/** A port nothing listens on right now (bind port 0, read it, release it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export interface WaitOptions {
  /** Checked before every attempt: a message means the server is gone, and is thrown at once. */
  failed?: () => string | undefined;
  /** Appended to the timeout error (e.g. the tail of the server's log). */
  diagnostics?: () => string;
}

/**
 * Call `attempt` every 100 ms until it succeeds (its result is returned) or `timeoutMs` passes.
 * `attempt` cleans up after itself when it fails.
 */
export async function waitForConnections<T>(what: string, timeoutMs: number, attempt: () => Promise<T>, options: WaitOptions = {}): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    const gone = options.failed?.();
    if (gone) throw new Error(gone);
    try {
      return await attempt();
    } catch (err) {
      last = err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const diagnostics = options.diagnostics?.();
  throw new Error(`${what} did not accept connections within ${timeoutMs} ms: ${(last as Error)?.message}${diagnostics ? `\n${diagnostics}` : ''}`);
}

/** The executable `cmd` on PATH, if any. */
export function findOnPath(cmd: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const file = join(dir, cmd);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** The last lines of a log file ('' when it cannot be read). */
export function tail(file: string, lines = 30): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/**
 * Never leave an orphaned server behind: `emergencyStop` (synchronous: kill the server, remove
 * its files) runs when the process exits, unless stop() or abort() came first.
 */
export class ExitGuard {
  private finished = false;
  private readonly onExit = () => {
    if (!this.finished) this.emergencyStop();
  };

  constructor(private readonly emergencyStop: () => void) {
    process.once('exit', this.onExit);
  }

  /** For stop(): false if the server was already stopped; else marks it stopped and drops the exit hook. */
  release(): boolean {
    if (this.finished) return false;
    this.finished = true;
    process.removeListener('exit', this.onExit);
    return true;
  }

  /** A start that failed: stop now, the emergency way, and drop the exit hook. */
  abort(): void {
    this.onExit();
    this.release();
  }
}
