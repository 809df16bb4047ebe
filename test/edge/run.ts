import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { log, runWithEngine, show } from '../compose/docker-setup';
import { imageTargets, LABEL, prepareImages } from '../compose/standins/build';
import { ROOT } from '../support/run-script';

/**
 * npm run test:edge: the nginx edge suites (test/edge) inside a container made from the nginx image the
 * stack names (runner/Dockerfile), so they test that release and its OpenSSL rather than whatever nginx
 * the host has (with TEST_IMAGES=official; a stand-in run tests Debian trixie's nginx 1.26). The
 * container shares the host's network: the suites start the app, nginx, pebble and their clients on
 * 127.0.0.1, and reach the host's Postgres and Redis there. Arguments go to jest.
 *
 * Images, engine and skipping as for the compose test (test/compose/run.ts, TEST_IMAGES).
 */
const RUNNER = 'compose-test/edge-runner:local';

runWithEngine('the nginx edge tests', async () => {
  const mode = await prepareImages();
  const { nginx, node } = imageTargets();
  log(`edge runner on ${nginx} (${mode}), Node from ${node}`);
  // The classic builder takes both bases from the local store and caches the layers.
  show(
    'docker',
    [
      'build',
      '--quiet',
      '--build-arg',
      `NGINX_IMAGE=${nginx}`,
      '--build-arg',
      `NODE_IMAGE=${node}`,
      '--label',
      `${LABEL}=edge-runner`,
      '--tag',
      RUNNER,
      path.join(__dirname, 'runner'),
    ],
    { ...process.env, DOCKER_BUILDKIT: '0' },
  );
  const passed = ['CI', 'TEST_DATABASE_URL', 'TEST_REDIS_URL'].flatMap((name) =>
    process.env[name] === undefined ? [] : ['--env', `${name}=${process.env[name]}`],
  );
  const jest = spawnSync(
    'docker',
    [
      'run',
      '--rm',
      '--network',
      'host',
      '--volume',
      `${ROOT}:${ROOT}`,
      '--workdir',
      ROOT,
      ...passed,
      RUNNER,
      'node',
      'node_modules/.bin/jest',
      '--config',
      'test/edge/jest.config.js',
      ...process.argv.slice(2),
    ],
    // A deadline that catches a hung suite outside CI too (jest's own per-test deadlines come first).
    { stdio: 'inherit', timeout: 30 * 60_000, killSignal: 'SIGKILL' },
  );
  return jest.status ?? 1;
});
