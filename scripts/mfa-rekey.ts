import dotenv from 'dotenv';
import { ConfigError, loadConfig } from '../config/config';
import { createDb } from '../src/lib/db';
import { createLogger } from '../src/lib/logger';
import { rekeyTotpSecrets } from '../src/mfa/rekey';
import { runMain } from './run-main';

/**
 * Re-encrypts every stored TOTP secret under the first key of MFA_ENCRYPTION_KEYS (ADR 0033), in
 * batches, while the app keeps serving; then the keys no secret is sealed with any more can be removed
 * from the ring. Prints counts and key ids, never a secret. Exits 1 when some secret could not be
 * opened: its key is missing or wrong, and must not be dropped before that is understood.
 */
async function main(): Promise<number> {
  dotenv.config({ quiet: true });
  const config = loadConfig(process.env);
  if (!config.mfaKeys)
    throw new ConfigError(['MFA_ENCRYPTION_KEYS is not set: there is no key to re-encrypt under']);
  const logger = createLogger({ level: 'warn', pretty: false });
  const db = createDb({ url: config.databaseUrl, tls: config.databaseTls, logger });
  try {
    const report = await rekeyTotpSecrets(db, config.mfaKeys);
    const out = (line: string) => process.stdout.write(`mfa:rekey: ${line}\n`);
    out(`${report.rekeyed} secret(s) re-encrypted under key "${report.currentKeyId}"`);
    if (report.changedMeanwhile > 0)
      out(`${report.changedMeanwhile} secret(s) changed by the app meanwhile: run again to check`);
    const remaining = Object.entries(report.remainingByKey).map(([id, n]) => `${id}=${n}`);
    out(`secrets per key now: ${remaining.join(', ') || 'none stored'}`);
    const unreadable = Object.entries(report.unreadable);
    for (const [keyId, n] of unreadable)
      process.stderr.write(
        `mfa:rekey: ${n} secret(s) under key "${keyId}" could not be opened: that key is missing from MFA_ENCRYPTION_KEYS or wrong\n`,
      );
    return unreadable.length > 0 ? 1 : 0;
  } finally {
    await db.close();
  }
}

runMain('mfa:rekey', main, (error): error is Error => error instanceof ConfigError);
