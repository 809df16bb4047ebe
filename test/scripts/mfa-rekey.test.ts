import { createMfaRepository } from '../../src/mfa/mfa.repository';
import { rekeyTotpSecrets } from '../../src/mfa/rekey';
import { createSecretBox } from '../../src/mfa/secret-box';
import { signedIn } from '../support/factories';
import { awayFromStepEdge, codeAt, codeStep, enrolTotp, mfaKey, passwordStep } from '../support/mfa';
import { runScript } from '../support/run-script';
import type { TestApp } from '../support/test-app';
import { useTestApp } from '../support/use-test-app';

/**
 * `npm run mfa:rekey` (scripts/mfa-rekey.ts): every TOTP secret moves under the first key of the ring,
 * so the older key can leave it (ADR 0033, ASVS 5.0 11.2.2, keys replaceable). Against real Postgres, with
 * secrets enrolled through the app under the old key.
 */

const oldKey = mfaKey('2025-old');
const newKey = mfaKey('2026-new');
const ring = `${newKey},${oldKey}`;

interface Row {
  user_id: string;
  key_id: string;
  secret_ciphertext: Buffer;
}

const rowsOf = async (t: TestApp): Promise<Row[]> =>
  t.db.query<Row>('SELECT user_id, key_id, secret_ciphertext FROM user_totp ORDER BY user_id');

/** `count` users enrolled under the old key; their secrets. */
async function enrolUnderOldKey(t: TestApp, count: number): Promise<Map<string, string>> {
  const secrets = new Map<string, string>();
  for (let i = 0; i < count; i++) {
    const created = await signedIn(t);
    secrets.set(created.user.id, (await enrolTotp(t, created.cookie, created.password)).secret);
  }
  return secrets;
}

describe('mfa:rekey, the script', () => {
  // Its own database: the script rewrites every row there is.
  const before = useTestApp({ MFA_ENCRYPTION_KEYS: oldKey }, { isolatedDatabase: 'mfa_rekey_script' });

  test('when run with a new key first, then every secret moves under it, the output has counts and no secret, and a second run finds nothing to do', async () => {
    const secrets = await enrolUnderOldKey(before, 3);
    const env = { NODE_ENV: 'test', DATABASE_URL: before.config.databaseUrl, MFA_ENCRYPTION_KEYS: ring };

    const first = await runScript('scripts/mfa-rekey.ts', env);
    const second = await runScript('scripts/mfa-rekey.ts', env);

    expect(first.code).toBe(0);
    expect(first.stdout).toContain('3 secret(s) re-encrypted under key "2026-new"');
    expect(first.stdout).toContain('secrets per key now: 2026-new=3');
    await expectUnderNewKeyAlone(before, secrets);
    for (const secret of secrets.values()) expect(first.stdout + first.stderr).not.toContain(secret);
    expect(second.code).toBe(0);
    expect(second.stdout).toContain('0 secret(s) re-encrypted');
  });

  test('when a secret is sealed under a key the ring lacks, then it is reported and left as it is, the rest move, and the exit code is 1', async () => {
    await enrolUnderOldKey(before, 1);
    const orphan = await signedIn(before);
    const lost = createSecretBox([{ id: 'gone', key: Buffer.alloc(32, 9) }]).seal(
      orphan.user.id,
      'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP',
    );
    await before.db.query(
      'INSERT INTO user_totp (user_id, secret_ciphertext, key_id, confirmed_at) VALUES ($1, $2, $3, now())',
      [orphan.user.id, lost.ciphertext, lost.keyId],
    );

    const result = await runScript('scripts/mfa-rekey.ts', {
      NODE_ENV: 'test',
      DATABASE_URL: before.config.databaseUrl,
      MFA_ENCRYPTION_KEYS: ring,
    });

    expect(result.code).toBe(1);
    expect(result.stdout).toContain('1 secret(s) re-encrypted under key "2026-new"');
    expect(result.stderr).toContain('1 secret(s) under key "gone" could not be opened');
    const orphanRow = (await rowsOf(before)).find((row) => row.user_id === orphan.user.id)!;
    expect(orphanRow.key_id).toBe('gone');
    expect(orphanRow.secret_ciphertext.equals(lost.ciphertext)).toBe(true);
  });

  test('when MFA_ENCRYPTION_KEYS is not set, then it refuses with a clear message', async () => {
    const result = await runScript('scripts/mfa-rekey.ts', {
      NODE_ENV: 'test',
      DATABASE_URL: before.config.databaseUrl,
    });

    expect(result.code).toBe(1);
    expect(result.stderr).toContain('MFA_ENCRYPTION_KEYS is not set');
  });
});

describe('rekeyTotpSecrets, in batches and beside the app', () => {
  const t = useTestApp({ MFA_ENCRYPTION_KEYS: oldKey }, { isolatedDatabase: 'mfa_rekey_batches' });

  // The same database, served with the new key alone: what runs once the old key has left the ring.
  const withoutOldKey = useTestApp(() => ({
    MFA_ENCRYPTION_KEYS: newKey,
    DATABASE_URL: t.config.databaseUrl,
  }));

  test('when there are more rows than a batch, then all of them move, and an app without the old key signs their users in', async () => {
    await awayFromStepEdge();
    const created = await signedIn(t);
    const { secret } = await enrolTotp(t, created.cookie, created.password);
    const secrets = await enrolUnderOldKey(t, 4);
    secrets.set(created.user.id, secret);

    const report = await rekeyTotpSecrets(t.db, [parseKey(newKey), parseKey(oldKey)], 2);

    expect(report).toMatchObject({ rekeyed: 5, changedMeanwhile: 0, unreadable: {} });
    expect(report.remainingByKey).toEqual({ '2026-new': 5 });
    await expectUnderNewKeyAlone(t, secrets);
    const pending = await passwordStep(withoutOldKey, created);
    expect((await codeStep(withoutOldKey, pending, { code: await codeAt(secret, 1) })).status).toBe(200);
  });

  test('when the app rewrites a row after it was read, then the re-encryption leaves the app`s write', async () => {
    const [userId] = [...(await enrolUnderOldKey(t, 1)).keys()];
    const repository = createMfaRepository(t.db);
    const [read] = (
      await repository.sealedUnderOtherKeys('2026-new', '00000000-0000-0000-0000-000000000000', 1000)
    ).filter((row) => row.userId === userId);
    // The app seals a new secret meanwhile (a restarted enrolment, here written directly).
    const appWrite = createSecretBox([parseKey(oldKey)]).seal(userId!, 'KRSXG5CTMVRXEZLUKRSXG5CTMVRXEZLU');
    await t.db.query('UPDATE user_totp SET secret_ciphertext = $2 WHERE user_id = $1', [
      userId,
      appWrite.ciphertext,
    ]);

    const moved = await repository.reseal(
      userId!,
      read!.sealed,
      createSecretBox([parseKey(newKey)]).seal(userId!, 'X'.repeat(32)),
    );

    expect(moved).toBe(false);
    const row = (await rowsOf(t)).find((r) => r.user_id === userId)!;
    expect(row.secret_ciphertext.equals(appWrite.ciphertext)).toBe(true);
  });
});

/** Every row is under the new key and opens with it alone, to the secret the user's app holds. */
async function expectUnderNewKeyAlone(t: TestApp, secrets: Map<string, string>): Promise<void> {
  const box = createSecretBox([parseKey(newKey)]);
  const rows = (await rowsOf(t)).filter((row) => secrets.has(row.user_id));
  expect(rows).toHaveLength(secrets.size);
  for (const row of rows) {
    expect(row.key_id).toBe('2026-new');
    expect(box.open(row.user_id, { keyId: row.key_id, ciphertext: row.secret_ciphertext })).toBe(
      secrets.get(row.user_id),
    );
  }
}

function parseKey(entry: string) {
  const [id, key] = entry.split(':') as [string, string];
  return { id, key: Buffer.from(key, 'base64') };
}
