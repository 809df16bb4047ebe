import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import request from 'supertest';
import { freePort } from '../support/ports';
import { parseExposition, valueOf } from '../support/prometheus';
import { killServers, serverEnv, startServer } from '../support/server-process';

/** The real entry point (src/main.ts) with and without METRICS_PORT. */

/**
 * The TCP ports a process listens on, read from Linux's /proc: its socket inodes, looked up in the
 * kernel's socket tables (state 0A is LISTEN). What the process opened, whatever it logged.
 */
function listeningPorts(pid: number): number[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (match) inodes.add(match[1]!);
    } catch {
      // closed between the listing and the read
    }
  }
  const ports = new Set<number>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields[3] === '0A' && inodes.has(fields[9]!)) ports.add(parseInt(fields[1]!.split(':')[1]!, 16));
    }
  }
  return [...ports].sort();
}

describe('the metrics listener of the process', () => {
  afterEach(() => killServers());

  test('when METRICS_PORT is unset, then the process listens on the app port only', async () => {
    const server = await startServer(serverEnv());

    expect(listeningPorts(server.child.pid!)).toEqual([server.port]);
    expect(server.logs.map((line) => line.msg)).not.toContain('metrics listening');
  });

  test('when METRICS_PORT is set, then metrics are served there and not on the app port, and the listener closes at shutdown', async () => {
    const metricsPort = await freePort();
    const server = await startServer(serverEnv({ METRICS_PORT: String(metricsPort) }));
    const ready = await server.waitForLog('metrics listening');
    expect(ready).toMatchObject({ address: '127.0.0.1', port: metricsPort });
    const app = `http://127.0.0.1:${server.port}`;
    const metrics = `http://127.0.0.1:${metricsPort}`;

    expect((await request(app).get('/healthz')).status).toBe(200);
    expect((await request(app).get('/metrics')).status).toBe(404);
    const scraped = await request(metrics).get('/metrics');

    expect(scraped.status).toBe(200);
    const samples = parseExposition(scraped.text);
    expect(
      valueOf(samples, 'http_request_duration_seconds_count', { route: '/healthz', status: '200' }),
    ).toBe(1);
    expect(
      valueOf(samples, 'http_request_duration_seconds_count', { route: 'unmatched', status: '404' }),
    ).toBe(1);
    expect(listeningPorts(server.child.pid!)).toEqual([server.port, metricsPort].sort());

    server.child.kill('SIGTERM');
    expect(await server.waitForExit(15_000)).toEqual({ code: 0, signal: null });
    await expect(request(metrics).get('/metrics')).rejects.toThrow(/ECONNREFUSED/);
  });
});
