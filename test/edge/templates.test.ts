import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { runCommand } from '../support/commands';
import { NGINX_LOCAL } from '../support/nginx-edge';
import { ROOT } from '../support/run-script';
import { describeWithTool } from '../support/tools';

/**
 * The contract between the templates and whoever renders them (the official nginx image in Docker,
 * scripts/nginx-local.sh elsewhere): exactly six deployment variables are substituted, nginx's own
 * $variables survive, and values that could smuggle directives into the configuration are refused.
 */

const TEMPLATE = path.join(ROOT, 'nginx', 'templates', 'default.conf.template');
const SNIPPETS = path.join(ROOT, 'nginx', 'snippets');
const VARIABLES = ['SERVER_NAME', 'APP_UPSTREAM', 'HTTP_PORT', 'HTTPS_PORT', 'CERT_DIR', 'ACME_WEBROOT'];

const ENV = {
  SERVER_NAME: 'app.example.com',
  APP_UPSTREAM: 'app:3000',
  HTTP_PORT: '80',
  HTTPS_PORT: '443',
  CERT_DIR: '/etc/letsencrypt/live/app.example.com',
  ACME_WEBROOT: '/var/www/certbot',
};

/**
 * What the official image's /docker-entrypoint.d/20-envsubst-on-templates.sh does with a template: it
 * substitutes every variable defined in the container's environment (NGINX_ENVSUBST_FILTER unset).
 */
const IMAGE_ENVSUBST =
  'defined_envs=$(printf \'${%s} \' $(awk "END { for (name in ENVIRON) { print ( name ~ // ) ? name : \\"\\" } }" < /dev/null ))\n' +
  'envsubst "$defined_envs" < "$1"';

/** scripts/nginx-local.sh with exactly `env` (unset variables left out). */
const runScript = (command: string, dir: string, env: Record<string, string | undefined>) =>
  runCommand('bash', [NGINX_LOCAL, command, dir], {
    env: Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined)),
    timeoutMs: 10_000,
  });

describeWithTool('envsubst', 'run these suites with npm run test:edge', 'the nginx templates', () => {
  let work: string;

  beforeAll(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'nginx-templates-'));
  });
  afterAll(() => rm(work, { recursive: true, force: true }));

  test('when the template is read, then its only placeholders are the six of the contract and the snippets have none', async () => {
    const template = await readFile(TEMPLATE, 'utf8');

    const placeholders = new Set([...template.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g)].map((m) => m[1]));
    expect([...placeholders].sort()).toEqual([...VARIABLES].sort());
    // No other $NAME or ${...}: nginx's variables are lower case, so the image (which substitutes every
    // variable of the container's environment, conventionally upper case) cannot eat them.
    const others = template.replace(/\$\{[A-Z_]+\}/g, '').match(/\$[A-Z{]/g) ?? [];
    expect(others).toEqual([]);

    // Snippets are copied, never rendered: a placeholder there would stay a literal.
    const snippets = await readdir(SNIPPETS);
    const withPlaceholders: string[] = [];
    for (const name of snippets) {
      if ((await readFile(path.join(SNIPPETS, name), 'utf8')).includes('${')) withPlaceholders.push(name);
    }
    expect(snippets.length).toBeGreaterThan(0);
    expect(withPlaceholders).toEqual([]);
  });

  test('when rendered by nginx-local.sh and the way the official image renders, then both files are the same, with nginx’s variables intact', async () => {
    const dir = path.join(work, 'render');
    const env = { ...ENV };

    const rendered = await runScript('render', dir, env);
    expect(rendered).toMatchObject({ code: 0, stderr: '' });
    const ours = await readFile(path.join(dir, 'conf.d', 'default.conf'), 'utf8');
    const image = (await runCommand('sh', ['-c', IMAGE_ENVSUBST, 'sh', TEMPLATE], { env })).stdout;

    expect(ours).toBe(image);
    expect(ours).not.toContain('${');
    expect(ours).toContain('server_name app.example.com;');
    expect(ours).toContain('server app:3000 max_fails=1 fail_timeout=5s;');
    expect(ours).toContain('listen 443 ssl;\n    http2 on;');
    expect(ours).toContain('ssl_certificate /etc/letsencrypt/live/app.example.com/fullchain.pem;');
    expect(ours).toContain('root /var/www/certbot;');
    for (const variable of [
      '$request_id',
      '$host',
      '$remote_addr',
      '$binary_remote_addr',
      '$request_method',
      '$request_uri',
      '$scheme',
      '$uri',
    ]) {
      expect(ours + (await snippetsText(dir))).toContain(variable);
    }

    const main = await readFile(path.join(dir, 'nginx.conf'), 'utf8');
    expect(main).toContain(`pid ${dir}/nginx.pid;`);
    expect(main).toContain('include /etc/nginx/mime.types;');
    expect(main).toContain('include conf.d/*.conf;');
    expect((await readdir(path.join(dir, 'snippets'))).sort()).toEqual((await readdir(SNIPPETS)).sort());
  });

  test('when APP_UPSTREAM lists several instances, then each gets a server line of the upstream, and nothing else changes', async () => {
    const single = path.join(work, 'single');
    const listed = path.join(work, 'listed');

    await runScript('render', single, { ...ENV, APP_UPSTREAM: '127.0.0.1:3001' });
    const result = await runScript('render', listed, {
      ...ENV,
      APP_UPSTREAM: '127.0.0.1:3001 127.0.0.1:3002 [::1]:3003',
    });

    expect(result).toMatchObject({ code: 0, stderr: '' });
    const one = await readFile(path.join(single, 'conf.d', 'default.conf'), 'utf8');
    const three = await readFile(path.join(listed, 'conf.d', 'default.conf'), 'utf8');
    const line = (address: string) => `    server ${address} max_fails=1 fail_timeout=5s;\n`;
    expect(three).toContain(line('127.0.0.1:3001') + line('127.0.0.1:3002') + line('[::1]:3003'));
    expect(three.replace(line('127.0.0.1:3002') + line('[::1]:3003'), '')).toBe(one);
  });

  test.each(['127.0.0.1:3001  127.0.0.1:3002', '127.0.0.1:3001\n127.0.0.1:3002', 'a:1 b:2;', ' a:1'])(
    'when APP_UPSTREAM is not a list of host:port separated by single spaces (%j), then render refuses it',
    async (value) => {
      const result = await runScript('render', path.join(work, 'bad-list'), { ...ENV, APP_UPSTREAM: value });

      expect(result.code).toBe(2);
      expect(result.stderr).toBe(
        'nginx-local: APP_UPSTREAM must be host:port, or several separated by one space\n',
      );
    },
  );

  test('when a variable is missing or could inject directives, then render refuses and names every problem', async () => {
    const dir = path.join(work, 'refused');
    const env = {
      ...ENV,
      SERVER_NAME: 'app.example.com; include /etc/shadow',
      APP_UPSTREAM: undefined,
      HTTPS_PORT: '443 ssl; listen 8080',
      CERT_DIR: 'relative/dir',
    };

    const result = await runScript('render', dir, env);

    expect(result.code).toBe(2);
    expect(result.stderr.trim().split('\n')).toEqual([
      'nginx-local: SERVER_NAME must be one host name',
      'nginx-local: APP_UPSTREAM is not set',
      'nginx-local: HTTPS_PORT must be a port number',
      'nginx-local: CERT_DIR must be an absolute path (letters, digits, . _ / @ + -)',
    ]);
    await expect(readdir(dir)).rejects.toThrow();
  });
});

async function snippetsText(dir: string): Promise<string> {
  const names = await readdir(path.join(dir, 'snippets'));
  const texts = await Promise.all(names.map((n) => readFile(path.join(dir, 'snippets', n), 'utf8')));
  return texts.join('\n');
}
