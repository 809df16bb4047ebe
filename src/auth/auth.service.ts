import { InvalidCredentialsError, InvalidCurrentPasswordError } from '../errors';
import type { Db } from '../lib/db';
import type { PasswordHasher } from '../lib/passwords';
import type { User } from '../users/user';
import { createUsersRepository } from '../users/users.repository';
import type { LoginThrottle } from './login-throttle';
import type { PasswordPolicy } from './password-policy';
import type { Reauthentication } from './reauthentication';

export type AuthService = ReturnType<typeof createAuthService>;

export function createAuthService(deps: {
  db: Db;
  passwords: PasswordHasher;
  passwordPolicy: PasswordPolicy;
  loginThrottle: LoginThrottle;
  reauthentication: Reauthentication;
}) {
  const { passwords, passwordPolicy, loginThrottle, reauthentication } = deps;
  const users = createUsersRepository(deps.db);

  return {
    /**
     * The same error, and the same argon2 work, for an unknown email and a wrong password: neither the
     * body nor the timing tells an attacker which accounts exist. Throttled per (email, IP) and per IP
     * before any hashing; unknown emails count too, so guessing which accounts exist is throttled alike.
     */
    async authenticate(email: string, password: string, clientIp: string): Promise<User> {
      const attempt = await loginThrottle.beginAttempt(email, clientIp);
      const found = await users.findCredentialsByEmail(email);
      const valid = found
        ? await passwords.verify(found.passwordHash, password)
        : await passwords.verifyAgainstDummy(password);
      if (!found || !valid) throw new InvalidCredentialsError(email, await attempt.failed());
      await attempt.succeeded();
      return found.user;
    },

    /** Returns the new session epoch: every session from before the change is now refused. */
    async changePassword(userId: string, currentPassword: string, newPassword: string): Promise<number> {
      await reauthentication.verifyCurrentPassword(userId, currentPassword);
      const user = await users.findById(userId);
      if (!user) throw new InvalidCurrentPasswordError(); // deleted since the check
      passwordPolicy.check(newPassword, { email: user.email, name: user.name, currentPassword });
      const epoch = await users.updatePasswordHash(userId, await passwords.hash(newPassword));
      if (epoch === null) throw new InvalidCurrentPasswordError();
      return epoch;
    },
  };
}
