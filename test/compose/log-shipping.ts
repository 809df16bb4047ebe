import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ComposeProject } from '../support/compose-project';
import { requestEdge, type EdgeAnswer } from '../support/nginx-edge';
import { createSyslogReceiver, type SyslogReceiver } from '../support/syslog-receiver';
import { createTestPki, type TestPki } from '../support/test-pki';
import { describeWithTool } from '../support/tools';
import { log } from './docker-setup';

/**
 * docker/compose/log-shipping.yml on the real engine, against a real syslog server (rsyslogd, TLS only,
 * on 127.0.0.1: dockerd connects from the host's network namespace). Run by stack.test.ts on its own
 * stack, which the overlay recreates container by container: no second build, no second project.
 */

const OVERLAY = 'docker/compose/log-shipping.yml';

export function describeLogShipping(project: ComposeProject): void {
  const install = 'apt-get install rsyslog rsyslog-gnutls';
  describeWithTool(
    'rsyslogd',
    install,
    'log shipping over TLS to a separate syslog receiver (ASVS 16.4.3)',
    () => {
      let dir = '';
      let pki: TestPki;
      let receiver: SyslogReceiver;
      let https443 = 0;
      let certificate = '';

      /** The project's environment with the overlay, aimed at `address`, trusting `caFile`. */
      const shipping = (address: string, caFile: string) => ({
        COMPOSE_FILE: `${project.env.COMPOSE_FILE}:${OVERLAY}`,
        LOG_SYSLOG_ADDRESS: address,
        LOG_SYSLOG_CA_FILE: caFile,
      });
      const receiverName = () => `localhost:${receiver.port}`;
      const get = (pathAndQuery: string): Promise<EdgeAnswer> =>
        requestEdge({ port: https443, secure: true, ca: certificate, timeoutMs: 30_000 }, pathAndQuery);
      const idOf = (a: EdgeAnswer) => a.headers['x-request-id'] as string;
      const appLines = () =>
        receiver
          .received()
          .filter((m) => m.tag.startsWith('app/') && m.message.startsWith('{'))
          .map((m) => JSON.parse(m.message) as Record<string, unknown>);

      /**
       * A one-off container with the overlay: its start is where Docker connects. secrets-init runs the
       * app's image with no network at all, so the one-off never joins the network nginx finds the app on.
       */
      const runOnce = (marker: string, env: Record<string, string>) =>
        project.compose(
          ['run', '--rm', '--no-deps', '-T', 'secrets-init', 'node', '-e', `console.log('${marker}')`],
          {
            env,
            timeoutMs: 120_000,
          },
        );

      beforeAll(async () => {
        dir = mkdtempSync(path.join(os.tmpdir(), 'log-receiver-'));
        pki = await createTestPki(dir);
        receiver = await createSyslogReceiver(dir, {
          caFile: pki.caFile,
          certFile: pki.serverCertFile,
          keyFile: pki.serverKeyFile,
        });
        await receiver.start();
      }, 60_000);

      afterAll(async () => {
        await receiver?.stop();
        if (dir) rmSync(dir, { recursive: true, force: true });
      });

      test('when the overlay is used without its receiver or its CA, then compose refuses to run and names the missing variable', async () => {
        const overlayOnly = { COMPOSE_FILE: `${project.env.COMPOSE_FILE}:${OVERLAY}` };
        const withoutAddress = await project.compose(['config', '--quiet'], {
          env: { ...overlayOnly, LOG_SYSLOG_CA_FILE: pki.caFile },
        });
        expect(withoutAddress.code).not.toBe(0);
        expect(withoutAddress.stderr).toMatch(/required variable LOG_SYSLOG_ADDRESS is missing/);
        const withoutCa = await project.compose(['config', '--quiet'], {
          env: { ...overlayOnly, LOG_SYSLOG_ADDRESS: receiverName() },
        });
        expect(withoutCa.code).not.toBe(0);
        expect(withoutCa.stderr).toMatch(/required variable LOG_SYSLOG_CA_FILE is missing/);
      });

      test('when the stack runs with the overlay, then every service`s lines reach the receiver over TLS, tagged by service, the app`s JSON with its request id, and docker compose logs still shows them', async () => {
        const started = Date.now();
        await project.mustCompose(['up', '--detach', '--wait'], {
          env: shipping(receiverName(), pki.caFile),
          timeoutMs: 600_000,
        });
        log(
          `log shipping: up with the overlay (containers recreated) took ${((Date.now() - started) / 1000).toFixed(0)} s`,
        );
        https443 = await project.port('nginx', 443);
        certificate = await project.nginxCertificate();

        const email = `shipped-${randomBytes(3).toString('hex')}@example.com`;
        const failed = await requestEdge(
          { port: https443, secure: true, ca: certificate, timeoutMs: 30_000 },
          '/api/auth/login',
          {
            method: 'POST',
            headers: { 'Content-Type': 'application/json' },
            body: JSON.stringify({ email, password: 'not the password at all' }),
          },
        );
        expect(failed.status).toBe(401);
        const requestId = idOf(failed);
        expect(requestId).toBeTruthy();

        const event = await project.until('the failed login reaches the receiver', async () =>
          appLines().find((l) => l.event === 'auth.login_failed' && l.requestId === requestId),
        );
        // Named by its keyed tag, never by the address typed (ADR 0039), on the receiver as in the stack.
        expect(event).toMatchObject({ emailTag: expect.any(String) as unknown, notAnEmail: false });
        expect(JSON.stringify(receiver.received())).not.toContain(email);
        expect(appLines().some((l) => l.requestId === requestId && l.msg === 'request completed')).toBe(true);
        await project.until('nginx`s access line reaches the receiver', async () =>
          receiver.received().some((m) => m.tag.startsWith('nginx/') && m.message.includes(requestId)),
        );
        // Every long-running service, and the one-shots of this `up`, under its own name and container.
        const tags = new Set(receiver.received().map((m) => m.tag.split('/')[0]));
        for (const service of ['app', 'nginx', 'postgres', 'redis', 'migrate'])
          expect({ service, shipped: tags.has(service) }).toEqual({ service, shipped: true });
        for (const m of receiver.received()) expect(m.tag).toMatch(/^[a-z-]+\/[0-9a-f]{12}$/);

        // Docker keeps a local copy too ("dual logging"): the operator's `docker compose logs` still works.
        const local = await project.mustCompose(['logs', '--no-color', 'app']);
        expect(local).toContain(requestId);
      });

      test('when the receiver`s certificate does not verify (a CA that did not sign it, or a name it is not for), then the container does not start and nothing is sent', async () => {
        const marker = (what: string) => `${what}-${randomBytes(4).toString('hex')}`;
        const wrongCa = marker('wrong-ca');
        const wrongName = marker('wrong-name');
        const trusted = marker('trusted');

        const byOtherCa = await runOnce(wrongCa, shipping(receiverName(), pki.otherCaFile));
        expect(byOtherCa.code).not.toBe(0);
        expect(byOtherCa.stderr).toMatch(/certificate|x509/i);
        // The certificate names localhost only; the address says 127.0.0.1.
        const byAddress = await runOnce(wrongName, shipping(`127.0.0.1:${receiver.port}`, pki.caFile));
        expect(byAddress.code).not.toBe(0);
        expect(byAddress.stderr).toMatch(/certificate|x509/i);

        // The same command, trusted: the line arrives (so the refusals above were the verification's).
        const ok = await runOnce(trusted, shipping(receiverName(), pki.caFile));
        expect(ok.code).toBe(0);
        await project.until('the trusted container`s line arrives', async () =>
          receiver.received().some((m) => m.message === trusted),
        );
        const received = receiver.received().map((m) => m.message);
        expect(received).not.toContain(wrongCa);
        expect(received).not.toContain(wrongName);
      });

      test('when the receiver goes away, then the running app answers as before and keeps its local log, a new container cannot start, and shipping resumes once the receiver is back', async () => {
        await receiver.stop();
        const during: { id: string; ms: number }[] = [];
        for (let i = 0; i < 20; i++) {
          const started = Date.now();
          const answer = await get('/api/auth/me');
          expect(answer.status).toBe(401);
          during.push({ id: idOf(answer), ms: Date.now() - started });
        }
        const slowest = Math.max(...during.map((d) => d.ms));
        log(`log shipping: receiver down, 20 requests, slowest answer ${slowest} ms`);
        expect(slowest).toBeLessThan(2000);
        const local = await project.mustCompose(['logs', '--no-color', 'app']);
        for (const { id } of during) expect(local).toContain(id);
        // Docker connects when it starts a container: with no receiver, none starts.
        const refused = await runOnce('no-receiver', shipping(receiverName(), pki.caFile));
        expect(refused.code).not.toBe(0);
        expect(refused.stderr).toMatch(/connection refused|dial/i);
        expect((await project.container('app')).State.Health?.Status).toBe('healthy');

        await receiver.start();
        const resumed = await project.until(
          'a new request`s line reaches the receiver again',
          async () => {
            const id = idOf(await get('/api/auth/me'));
            await new Promise((resolve) => setTimeout(resolve, 500));
            return appLines().some((l) => l.requestId === id) && id;
          },
          120_000,
        );
        expect(resumed).toBeTruthy();
        const lost = during.filter(({ id }) => !appLines().some((l) => l.requestId === id)).length;
        log(
          `log shipping: ${lost} of ${during.length} access lines written while the receiver was down never arrived`,
        );
      });
    },
  );
}
