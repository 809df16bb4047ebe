import { InvalidCredentialsError, InvalidCurrentPasswordError } from '../errors';
import type { Db } from '../lib/db';
import type { PasswordHasher } from '../lib/passwords';
import { createUsersRepository, type User } from '../users/users.repository';
import type { PasswordPolicy } from './password-policy';

export type AuthService = ReturnType<typeof createAuthService>;

export function createAuthService(deps: {
  db: Db;
  passwords: PasswordHasher;
  passwordPolicy: PasswordPolicy;
}) {
  const { passwords, passwordPolicy } = deps;
  const users = createUsersRepository(deps.db);

  return {
    /**
     * The same error, and the same argon2 work, for an unknown email and a wrong password: neither the
     * body nor the timing tells an attacker which accounts exist.
     */
    async authenticate(email: string, password: string): Promise<User> {
      const found = await users.findCredentialsByEmail(email);
      const valid = found
        ? await passwords.verify(found.passwordHash, password)
        : await passwords.verifyAgainstDummy(password);
      if (!found || !valid) throw new InvalidCredentialsError();
      return found.user;
    },

    async changePassword(userId: string, currentPassword: string, newPassword: string): Promise<void> {
      const hash = await users.findPasswordHash(userId);
      if (!hash || !(await passwords.verify(hash, currentPassword))) throw new InvalidCurrentPasswordError();
      passwordPolicy.check(newPassword);
      await users.updatePasswordHash(userId, await passwords.hash(newPassword));
    },
  };
}
