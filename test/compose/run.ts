import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { ROOT } from '../support/run-script';
import { capture, ensureComposeV2, ensureEngine, log, show } from './docker-setup';
import { buildPebbleOnOfficialDebian, buildStandins, imageTargets, STANDIN_BASE } from './standins/build';

/**
 * npm run test:compose: the whole stack under a real Docker engine and Compose v2, then the jest suites
 * of test/compose. Arguments are passed to jest.
 *
 *   TEST_IMAGES=official   the compose file's and the Dockerfile's images, pulled from their registries
 *   TEST_IMAGES=standin    local stand-ins built under the same tags (test/compose/standins)
 *   (unset)                official when the Dockerfile's base image can be pulled, else standin
 *
 * Without an engine a developer machine skips with one line; under CI=true (or TEST_COMPOSE_SETUP=1) the
 * engine is installed and started here, and stopped again at the end.
 */

function imageMode(): 'official' | 'standin' {
  const asked = process.env.TEST_IMAGES;
  if (asked === 'official' || asked === 'standin') return asked;
  if (asked) throw new Error(`TEST_IMAGES must be official or standin, not ${asked}`);
  const first = imageTargets().node;
  const pulled = capture('docker', ['pull', '--quiet', first]);
  if (pulled.code === 0) return 'official';
  log(`cannot pull ${first} (${pulled.stderr.trim().split('\n').pop()}): using stand-ins`);
  return 'standin';
}

async function main(): Promise<number> {
  const engine = await ensureEngine();
  if (!engine) {
    if (process.env.CI === 'true') throw new Error('no Docker engine answers, and none could be set up');
    process.stdout.write(
      'Skipping the compose test: no Docker engine answers `docker info` (start one, or run as root with TEST_COMPOSE_SETUP=1 to install and start it).\n',
    );
    return 0;
  }
  try {
    const mode = imageMode();
    if (mode === 'standin') {
      await buildStandins();
    } else {
      for (const image of Object.values(imageTargets())) show('docker', ['pull', '--quiet', image]);
      await buildPebbleOnOfficialDebian();
    }
    const compose = ensureComposeV2(mode === 'standin' ? STANDIN_BASE : 'debian:trixie-slim');
    log(`engine ${engine.serverVersion}, compose ${compose}, images: ${mode}`);
    const jest = spawnSync(
      path.join(ROOT, 'node_modules', '.bin', 'jest'),
      ['--config', path.join(__dirname, 'jest.config.js'), ...process.argv.slice(2)],
      { stdio: 'inherit', env: { ...process.env, TEST_IMAGES: mode } },
    );
    return jest.status ?? 1;
  } finally {
    await engine.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (error: Error) => {
    log(error.message);
    process.exit(1);
  },
);
