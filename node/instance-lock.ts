// One agent per MESHCC_HOME. The pid file is created exclusively; a pid file or socket
// left by a crashed agent (its process gone, its socket refusing) is taken over.
import net from 'node:net';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { MeshccError } from '../protocol/errors.js';

export interface InstanceLock {
  release(): Promise<void>;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether something accepts connections on this unix socket (an agent that is alive). */
export function socketAnswers(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.connect(socketPath);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}

async function claimPidFile(pidFile: string): Promise<void> {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await fs.writeFile(pidFile, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const owner = Number.parseInt(await fs.readFile(pidFile, 'utf8').catch(() => ''), 10);
    if (Number.isInteger(owner) && owner !== process.pid && alive(owner)) {
      throw new MeshccError(
        'already-running',
        `another agent (pid ${owner}) is already running on ${path.dirname(pidFile)}; stop it or set MESHCC_HOME`,
      );
    }
    await fs.rm(pidFile, { force: true });
  }
  throw new MeshccError('already-running', `could not claim ${pidFile}: another agent is starting`);
}

export async function acquireInstanceLock(home: string, socketPath: string): Promise<InstanceLock> {
  const pidFile = path.join(home, 'agent.pid');
  await claimPidFile(pidFile);
  if (await socketAnswers(socketPath)) {
    await fs.rm(pidFile, { force: true });
    throw new MeshccError('already-running', `another agent is already serving ${socketPath}`);
  }
  await fs.rm(socketPath, { force: true });
  await fs.mkdir(path.dirname(socketPath), { recursive: true });
  return {
    async release() {
      await fs.rm(socketPath, { force: true });
      const owner = await fs.readFile(pidFile, 'utf8').catch(() => '');
      if (Number.parseInt(owner, 10) === process.pid) await fs.rm(pidFile, { force: true });
    },
  };
}
