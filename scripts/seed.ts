import dotenv from 'dotenv';
import { ConfigError, loadConfig } from '../config/config';
import { createBreachedPasswords } from '../src/auth/breached-passwords';
import { createPasswordPolicy } from '../src/auth/password-policy';
import { AppError, EmailTakenError } from '../src/errors';
import { createDb } from '../src/lib/db';
import { createLogger } from '../src/lib/logger';
import { createPasswordHasher } from '../src/lib/passwords';
import { createUsersRepository } from '../src/users/users.repository';
import { emailSchema, nameSchema } from '../src/users/users.schemas';
import { createAccount } from '../src/users/users.service';
import { runMain } from './run-main';

/** The first admin's display name when ADMIN_NAME is not set. */
const DEFAULT_ADMIN_NAME = 'Administrator';

/**
 * Creates the first admin from ADMIN_EMAIL / ADMIN_PASSWORD when both are set and no account has that
 * email. Idempotent, and the only way an admin appears from nothing: there are no default credentials.
 * The password goes through the same policy as every other, and is never printed.
 */
async function main(): Promise<number> {
  dotenv.config({ quiet: true });
  const config = loadConfig(process.env);
  const { email, password } = config.admin;
  if (!email || !password) {
    process.stdout.write('seed: ADMIN_EMAIL and ADMIN_PASSWORD are not both set; no admin created\n');
    return 0;
  }
  // Checked before anything touches the database; an empty ADMIN_NAME (.env.example's) means the default.
  const name = nameSchema.safeParse(config.admin.name || DEFAULT_ADMIN_NAME);
  if (!name.success) {
    throw new ConfigError([`ADMIN_NAME ${name.error.issues[0]?.message ?? 'is not a valid name'}`]);
  }
  const logger = createLogger({ level: 'warn', pretty: false });
  const db = createDb({ url: config.databaseUrl, tls: config.databaseTls, logger });
  try {
    const users = createUsersRepository(db);
    const normalized = emailSchema.parse(email);
    if (await users.findByEmail(normalized)) {
      process.stdout.write(`seed: ${normalized} already exists; nothing changed\n`);
      return 0;
    }
    // The same policy as the app's, the breached-password lookup included when it is configured.
    const passwordPolicy = createPasswordPolicy(
      config,
      createBreachedPasswords(config, { logger: () => logger }),
    );
    const created = await createAccount(
      { users, passwords: createPasswordHasher(), passwordPolicy },
      { email: normalized, name: name.data, password, role: 'admin' },
      // Verified from the start: the operator who set ADMIN_EMAIL vouches for the address, and with
      // REQUIRE_VERIFIED_EMAIL on, the only admin must not be locked out until a mail arrives.
      { emailVerified: true },
    ).then(
      () => true,
      (error: unknown) => {
        if (error instanceof EmailTakenError) return false; // another seed run won the race
        throw error;
      },
    );
    process.stdout.write(`seed: ${created ? 'created admin' : 'already exists:'} ${normalized}\n`);
    return 0;
  } finally {
    await db.close();
  }
}

runMain('seed', main, (error): error is Error => error instanceof ConfigError || error instanceof AppError);
