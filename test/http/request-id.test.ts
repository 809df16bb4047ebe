import { randomBytes } from 'node:crypto';
import net from 'node:net';
import request from 'supertest';
import { uniqueEmail } from '../support/factories';
import { listen } from '../support/listen';
import { accessLineOf, eventOf } from '../support/log-lines';
import { useTestApp } from '../support/use-test-app';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('X-Request-Id', () => {
  const t = useTestApp();

  test('when a well-formed id is sent, then it is echoed, used in the error body and in every log line', async () => {
    const id = `trace.${randomBytes(6).toString('hex')}_A-1`;

    const res = await request(t.app)
      .post('/api/auth/login')
      .set('X-Request-Id', id)
      .send({ email: uniqueEmail('nobody'), password: 'whatever it is' });

    expect(res.status).toBe(401);
    expect(res.headers['x-request-id']).toBe(id);
    expect(res.body.error.requestId).toBe(id);
    expect(eventOf(t, res, 'auth.login_failed')).toBeDefined();
    expect(accessLineOf(t, res)).toBeDefined();
  });

  test.each([
    ['8 characters', 'abcdEFG8'],
    ['64 characters', 'x'.repeat(64)],
  ])('when the id is exactly %s, then it is kept', async (_case, id) => {
    const res = await request(t.app).get('/api/auth/me').set('X-Request-Id', id);
    expect(res.headers['x-request-id']).toBe(id);
    expect(res.body.error.requestId).toBe(id);
  });

  test.each([
    ['is too short', 'abc1234'],
    ['is too long', 'x'.repeat(65)],
    ['has spaces', 'abc def ghi'],
    ['has a tab', 'abcd\tefghij'],
    ['has a quote and braces', 'abcd"}{"injected":1'],
    ['has slashes', '../../etc/passwd'],
    ['has a semicolon', 'abcdefgh;x=y'],
    ['has a non-ASCII letter', 'caf\u00e9-12345678'],
  ])('when the id %s, then it is replaced by a UUID everywhere', async (_case, id) => {
    const res = await request(t.app).get('/api/auth/me').set('X-Request-Id', id);

    const replaced = res.headers['x-request-id'];
    expect(replaced).toMatch(UUID);
    expect(res.body.error.requestId).toBe(replaced);
    expect(accessLineOf(t, res)).toBeDefined();
    expect(t.logs.some((l) => l.requestId === id)).toBe(false);
  });

  // ASVS 5.0 1.2.1, 16.4.1: only an id of a fixed shape is echoed in a header or written to the log.
  test('when the id carries a line break, then the request is refused before the app and nothing is logged from it', async () => {
    const marker = `injected${randomBytes(6).toString('hex')}`;
    const { port, close } = await listen(t.app);
    try {
      const statusLine = await new Promise<string>((resolve, reject) => {
        const socket = net.connect(port, '127.0.0.1', () =>
          socket.write(
            `GET /api/auth/me HTTP/1.1\r\nHost: x\r\nX-Request-Id: abcdefgh\n${marker}: 1\r\nConnection: close\r\n\r\n`,
          ),
        );
        let received = '';
        socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
        socket.on('end', () => resolve(received.split('\r\n')[0]!));
        socket.on('error', reject);
      });
      expect(statusLine).toMatch(/^HTTP\/1\.1 400/);
      expect(t.rawLogs()).not.toContain(marker);
    } finally {
      await close();
    }
  });
});
