import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client, escapeIdentifier } from 'pg';
import { TEST_DATABASE_URL } from '../support/env';
import { ROOT, runScript } from '../support/run-script';
import { describeWithTool } from '../support/tools';

/**
 * docker/postgres/initdb/10-app-role.sh, the compose stack's database provisioning, run against the
 * test Postgres with a role and database of its own: the app's login is not a superuser, owns its
 * database, and the migrations run as it.
 */

const SCRIPT = path.join(ROOT, 'docker/postgres/initdb/10-app-role.sh');

function runRoleScript(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const server = new URL(TEST_DATABASE_URL);
  return new Promise((resolve, reject) => {
    const child = spawn(SCRIPT, [], {
      env: {
        PATH: process.env.PATH ?? '',
        // As the postgres image runs it (POSTGRES_USER), but over TCP to the test server.
        POSTGRES_USER: decodeURIComponent(server.username) || 'postgres',
        PGHOST: server.hostname,
        PGPORT: server.port || '5432',
        ...(server.password ? { PGPASSWORD: decodeURIComponent(server.password) } : {}),
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, output }));
  });
}

describeWithTool(
  'psql',
  'apt-get install postgresql-client',
  'the postgres init script for the app role',
  () => {
    const runDatabase = process.env.TEST_RUN_DATABASE_NAME ?? 'app_test_unknown';
    // The database name starts with the run's, so global-teardown drops it whatever happens here.
    const database = `${runDatabase}_approle`;
    const role = `${runDatabase}_approle_login`;
    let dir: string;
    let admin: Client;
    const env = (): Record<string, string> => ({
      APP_DB_USER: role,
      APP_DB_NAME: database,
      APP_DB_PASSWORD_FILE: path.join(dir, 'app_password'),
    });
    const roleUrl = (): string => {
      const url = new URL(TEST_DATABASE_URL);
      url.username = role;
      url.password = 'first-password-0123456789';
      url.pathname = `/${database}`;
      return url.toString();
    };

    beforeAll(async () => {
      dir = mkdtempSync(path.join(tmpdir(), 'app-role-'));
      writeFileSync(path.join(dir, 'app_password'), 'first-password-0123456789\n', { mode: 0o600 });
      admin = new Client({ connectionString: TEST_DATABASE_URL });
      await admin.connect();
    });
    afterAll(async () => {
      await admin.query(`DROP DATABASE IF EXISTS ${escapeIdentifier(database)} WITH (FORCE)`);
      await admin.query(`DROP ROLE IF EXISTS ${escapeIdentifier(role)}`);
      await admin.end();
      rmSync(dir, { recursive: true, force: true });
    });

    // ASVS 5.0 13.2.2: the app's Postgres role holds only what it needs.
    test('when it runs, then the role can log in, is no superuser, cannot create databases or roles, and owns its database', async () => {
      const result = await runRoleScript(env());
      expect(result).toMatchObject({ code: 0 });
      expect(result.output).not.toContain('first-password');

      const { rows } = await admin.query(
        `SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls,
              rolpassword LIKE 'SCRAM-SHA-256$%' AS hashed
         FROM pg_authid WHERE rolname = $1`,
        [role],
      );
      expect(rows).toEqual([
        {
          rolcanlogin: true,
          rolsuper: false,
          rolcreatedb: false,
          rolcreaterole: false,
          rolreplication: false,
          rolbypassrls: false,
          hashed: true,
        },
      ]);
      const owner = await admin.query(
        `SELECT pg_get_userbyid(datdba) AS owner, datacl::text AS acl FROM pg_database WHERE datname = $1`,
        [database],
      );
      expect(owner.rows[0].owner).toBe(role);
      // Nobody but the owner may connect (no "=c/" entry for PUBLIC).
      expect(owner.rows[0].acl).not.toMatch(/[{,]=/);
    });

    test('when the migrations run as the role, then they create the tables it owns, and it still cannot reach beyond them', async () => {
      const migrated = await runScript('scripts/migrate.ts', { NODE_ENV: 'test', DATABASE_URL: roleUrl() });
      expect(migrated).toMatchObject({ code: 0 });
      const tables = new Client({ connectionString: roleUrl() });
      await tables.connect();
      try {
        const { rows } = await tables.query(`SELECT tableowner FROM pg_tables WHERE tablename = 'users'`);
        expect(rows).toEqual([{ tableowner: role }]);
        await expect(tables.query('CREATE DATABASE app_role_escape')).rejects.toMatchObject({
          code: '42501',
        });
        await expect(tables.query('CREATE ROLE app_role_escape')).rejects.toMatchObject({ code: '42501' });
        await expect(tables.query(`COPY (SELECT 1) TO PROGRAM 'true'`)).rejects.toMatchObject({
          code: '42501',
        });
      } finally {
        await tables.end();
      }
    });

    test('when it runs again with a rotated password, then it succeeds and the stored password changes', async () => {
      const before = await admin.query('SELECT rolpassword FROM pg_authid WHERE rolname = $1', [role]);
      writeFileSync(path.join(dir, 'app_password'), 'second-password-9876543210\n');
      expect(await runRoleScript(env())).toMatchObject({ code: 0 });
      const after = await admin.query('SELECT rolpassword FROM pg_authid WHERE rolname = $1', [role]);
      expect(after.rows[0].rolpassword).not.toBe(before.rows[0].rolpassword);
    });

    test('when the password file is missing, then it fails and says which file', async () => {
      const result = await runRoleScript({ ...env(), APP_DB_PASSWORD_FILE: path.join(dir, 'missing') });
      expect(result.code).not.toBe(0);
      expect(result.output).toContain(path.join(dir, 'missing'));
    });
  },
);
