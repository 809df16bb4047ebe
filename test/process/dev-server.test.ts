import net from 'node:net';
import { startBackground, type BackgroundProcess } from '../support/commands';
import { freePort } from '../support/ports';
import { IGNORE_DOTENV } from '../support/run-script';
import { serverEnv } from '../support/server-process';

/**
 * `npm run dev` is npm, then tsx's watcher, then the server. Stopping it (Ctrl-C in a terminal, or a
 * signal to npm from a process manager) must stop the server too: a server left behind keeps the port,
 * and the next `npm run dev` fails with EADDRINUSE.
 */

const refused = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => (socket.destroy(), resolve(false)));
    socket.once('error', () => resolve(true));
  });

/** True once no process of the group is left. */
const groupGone = (pgid: number) => {
  try {
    process.kill(-pgid, 0);
    return false;
  } catch {
    return true;
  }
};

async function until(condition: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await condition()) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return condition();
}

describe('npm run dev', () => {
  let dev: BackgroundProcess | undefined;
  afterEach(async () => {
    // Whatever of the group is left (a server orphaned by a regression) goes too: it would hold the
    // test's output pipes open and hang the run.
    if (dev?.child.pid !== undefined && !groupGone(dev.child.pid)) process.kill(-dev.child.pid, 'SIGKILL');
    await dev?.stop(2_000);
    dev = undefined;
  });

  async function startDev(): Promise<{ port: number; pgid: number }> {
    const port = await freePort();
    dev = startBackground('npm', ['run', '--silent', 'dev'], {
      env: { ...serverEnv({ NODE_ENV: 'development', PORT: String(port) }), ...IGNORE_DOTENV },
    });
    await dev.waitForOutput(/listening/, 30_000);
    expect(await refused(port)).toBe(false);
    return { port, pgid: dev.child.pid! };
  }

  test('when npm alone gets SIGTERM, then the watcher and the server stop too, and the port is free', async () => {
    const { port, pgid } = await startDev();

    process.kill(pgid, 'SIGTERM');

    expect(await until(() => groupGone(pgid), 10_000)).toBe(true);
    expect(await refused(port)).toBe(true);
  });

  test('when Ctrl-C reaches the whole process group, then everything stops and the port is free', async () => {
    const { port, pgid } = await startDev();

    process.kill(-pgid, 'SIGINT');

    expect(await until(() => groupGone(pgid), 10_000)).toBe(true);
    expect(await refused(port)).toBe(true);
  });
});
