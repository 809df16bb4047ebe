import { killServers, serverEnv, spawnServer, startServer } from '../support/server-process';

/**
 * ASVS 16.2.2: log time stamps in one time zone, UTC, as ISO 8601. The real process (src/main.ts and
 * the logger src/lib/logger.ts builds for it) runs on a "host" whose time zone is far from UTC, so a
 * local time would show in the hour and the minutes.
 */

/** +05:30 all year (no daylight saving): a local time differs from UTC in its hour and its minutes. */
const FAR_FROM_UTC = 'Asia/Kolkata';
const ISO_8601_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** Every line is written between `from` and `to`, and says so in UTC. */
function expectUtcIsoBetween(time: unknown, from: number, to: number): void {
  expect(time).toMatch(ISO_8601_UTC);
  const at = Date.parse(time as string);
  expect(at).toBeGreaterThanOrEqual(from - 1);
  expect(at).toBeLessThanOrEqual(to + 1);
}

describe('log time stamps (ASVS 16.2.2)', () => {
  afterEach(() => killServers());

  test('when the production server logs, then every line carries its time in UTC as ISO 8601, whatever the host`s time zone', async () => {
    const from = Date.now();
    const server = await startServer(
      serverEnv({
        NODE_ENV: 'production',
        PUBLIC_URL: 'https://app.example.test',
        TRUST_PROXY: '1',
        SESSION_SECRET: 'a-production-grade-secret-0123456789-abcdefghij',
        TZ: FAR_FROM_UTC,
      }),
    );
    // An access line and a security event beside the start and stop lines.
    const answer = await fetch(`http://127.0.0.1:${server.port}/api/auth/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Forwarded-For': '203.0.113.7' },
      body: '{',
    });
    expect(answer.status).toBe(400);
    server.child.kill('SIGTERM');
    expect(await server.waitForExit(5000)).toEqual({ code: 0, signal: null });
    const to = Date.now();

    const lines = server.stdout().split('\n').filter(Boolean);
    expect(server.logs).toHaveLength(lines.length); // every line is JSON
    expect(server.logs.map((line) => line.msg)).toEqual(
      expect.arrayContaining(['listening', 'request.validation_failed', 'request completed']),
    );
    for (const line of server.logs) expectUtcIsoBetween(line.time, from, to);
  });

  test('when a developer runs the server, then each pretty line starts with the same UTC ISO 8601 time', async () => {
    const from = Date.now();
    const server = spawnServer(serverEnv({ NODE_ENV: 'development', TZ: FAR_FROM_UTC }));
    // Pretty lines are not JSON, so waitForLog cannot see them: wait for the text.
    const deadline = Date.now() + 25_000;
    while (!server.stdout().includes('listening') && Date.now() < deadline && !server.exit)
      await new Promise((resolve) => setTimeout(resolve, 100));
    server.child.kill('SIGTERM');
    await server.waitForExit(5000);
    const to = Date.now();

    // An entry's first line; an error's properties follow it on indented lines.
    const lines = server
      .stdout()
      .split('\n')
      .filter((line) => line !== '' && !/^\s/.test(line));
    expect(lines.some((line) => line.includes('listening'))).toBe(true);
    for (const line of lines) {
      const time = /^\[([^\]]+)\] /.exec(line)?.[1];
      expectUtcIsoBetween(time, from, to);
    }
  });
});
