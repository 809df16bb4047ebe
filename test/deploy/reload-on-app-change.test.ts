import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startBackground, type BackgroundProcess } from '../support/commands';
import { ROOT } from '../support/run-script';

/**
 * nginx/reload-on-app-change.sh, the nginx container's watcher of the app's addresses (ADR 0022): a
 * replica added or recreated changes the addresses behind `app`, and nginx, which resolved them at
 * start, is reloaded to see them. The addresses come from a file here (APP_LOOKUP_COMMAND) and the
 * reload is recorded in another.
 */

const SCRIPT = path.join(ROOT, 'nginx', 'reload-on-app-change.sh');

describe('reload-on-app-change.sh', () => {
  let dir: string;
  let watcher: BackgroundProcess | undefined;
  const addressesFile = () => path.join(dir, 'addresses');
  const reloadsFile = () => path.join(dir, 'reloads');
  /** What `getent ahosts` prints: one line per address and socket type. */
  const resolveTo = (...addresses: string[]) =>
    writeFile(
      addressesFile(),
      addresses.flatMap((a) => [`${a}      STREAM app`, `${a}      DGRAM`, `${a}      RAW`]).join('\n'),
    );
  const reloads = async () =>
    (await readFile(reloadsFile(), 'utf8').catch(() => '')).split('\n').filter(Boolean);

  const startWatcher = async (env: Record<string, string> = {}) => {
    const lookup = path.join(dir, 'lookup.sh');
    await writeFile(lookup, `#!/bin/sh\n[ "$1" = app ] && cat "${addressesFile()}"\n`, { mode: 0o755 });
    const reload = path.join(dir, 'reload.sh');
    await writeFile(reload, `#!/bin/sh\necho reloaded >> "${reloadsFile()}"\n`, { mode: 0o755 });
    watcher = startBackground('sh', [SCRIPT, '--foreground'], {
      env: {
        APP_UPSTREAM: 'app:3000',
        APP_CHECK_INTERVAL: '1',
        APP_LOOKUP_COMMAND: lookup,
        NGINX_RELOAD_COMMAND: reload,
        ...env,
      },
    });
    await watcher.waitForOutput(/watching the addresses of app/);
  };

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'app-change-'));
  });
  afterEach(async () => {
    await watcher?.stop();
    watcher = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  test('when a replica is added, then nginx is reloaded once, and not again while the addresses stay', async () => {
    await resolveTo('172.20.0.5');
    await startWatcher();

    await resolveTo('172.20.0.5', '172.20.0.6');
    await watcher!.waitForOutput(/app is now 172\.20\.0\.5 172\.20\.0\.6 \(was 172\.20\.0\.5\); reloading/);
    await new Promise((resolve) => setTimeout(resolve, 2500));

    expect(await reloads()).toEqual(['reloaded']);
  }, 15_000);

  test('when the name resolves to nothing for a moment (a recreate), then nothing is reloaded until new addresses appear', async () => {
    await resolveTo('172.20.0.5');
    await startWatcher();

    await resolveTo();
    await new Promise((resolve) => setTimeout(resolve, 2500));
    expect(await reloads()).toEqual([]);

    await resolveTo('172.20.0.9');
    await watcher!.waitForOutput(/app is now 172\.20\.0\.9 \(was 172\.20\.0\.5\); reloading/);
    // The line is written just before the reload command runs: give the command its moment.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(await reloads()).toEqual(['reloaded']);
  }, 15_000);

  test('when nginx would refuse the new configuration, then it is not signalled, and the next check tries again', async () => {
    // An nginx on PATH whose first configuration test fails, as when `app` resolves to nothing then.
    const bin = path.join(dir, 'bin');
    await mkdir(bin);
    await writeFile(
      path.join(bin, 'nginx'),
      `#!/bin/sh\necho "$*" >> "${reloadsFile()}"\n` +
        `if [ "$1" = -t ] && [ ! -e "${dir}/tested" ]; then touch "${dir}/tested"; exit 1; fi\n`,
      { mode: 0o755 },
    );
    await resolveTo('172.20.0.5');
    await startWatcher({ NGINX_RELOAD_COMMAND: '', PATH: `${bin}:${process.env.PATH}` });

    await resolveTo('172.20.0.5', '172.20.0.6');
    await watcher!.waitForOutput(/reload failed; retrying/);
    await watcher!.waitForOutput(/reloading nginx[\s\S]*reloading nginx/);
    await new Promise((resolve) => setTimeout(resolve, 1500));

    expect(await reloads()).toEqual(['-t -q', '-t -q', '-s reload']);
  }, 15_000);

  test('when no lookup command is given, then it asks the system resolver (getent)', async () => {
    watcher = startBackground('sh', [SCRIPT, '--foreground'], {
      env: { APP_UPSTREAM: 'localhost:3000', APP_CHECK_INTERVAL: '1', NGINX_RELOAD_COMMAND: 'true' },
    });

    await watcher.waitForOutput(/watching the addresses of localhost every 1s: .*127\.0\.0\.1/);
  });
});
