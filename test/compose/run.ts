import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { ROOT } from '../support/run-script';
import { ensureComposeV2, log, runWithEngine } from './docker-setup';
import { prepareImages, trixieImage } from './standins/build';

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
runWithEngine('the compose test', async (engine) => {
  const mode = await prepareImages();
  const compose = ensureComposeV2(trixieImage(mode));
  log(`engine ${engine.serverVersion}, compose ${compose}, images: ${mode}`);
  const jest = spawnSync(
    path.join(ROOT, 'node_modules', '.bin', 'jest'),
    ['--config', path.join(__dirname, 'jest.config.js'), ...process.argv.slice(2)],
    { stdio: 'inherit', env: { ...process.env, TEST_IMAGES: mode } },
  );
  return jest.status ?? 1;
});
