import { InvalidCredentialsError, InvalidCurrentPasswordError, ServiceBusyError } from '../errors';
import type { Db } from '../lib/db';
import type { PasswordHashing } from '../lib/password-queue';
import type { User } from '../users/user';
import { createUsersRepository } from '../users/users.repository';
import type { LoginThrottle } from './login-throttle';
import type { PasswordPolicy } from './password-policy';
import type { Reauthentication } from './reauthentication';

export type AuthService = ReturnType<typeof createAuthService>;

export function createAuthService(deps: {
  db: Db;
  passwords: PasswordHashing;
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
     *
     * A place at the hasher is taken first: when hashing is saturated the attempt is refused (503)
     * before it spends a throttle point or a query, and before the email is looked up, so the refusal is
     * the same for every email. The throttle still runs before any hash, so a locked login costs none.
     */
    async authenticate(email: string, password: string, clientIp: string): Promise<User> {
      return passwords.withPlace(async (hashing) => {
        const attempt = await loginThrottle.beginAttempt(email, clientIp);
        const found = await users.findCredentialsByEmail(email);
        const valid = await (
          found ? hashing.verify(found.passwordHash, password) : hashing.verifyAgainstDummy(password)
        ).catch(async (error: unknown) => {
          // The wait for a turn ran out: the password was never checked, so this was no guess.
          if (error instanceof ServiceBusyError) await attempt.withdrawn();
          throw error;
        });
        if (!found || !valid) throw new InvalidCredentialsError(email, await attempt.failed());
        await attempt.succeeded();
        return found.user;
      });
    },

    /**
     * Returns the new session epoch: every session from before the change is now refused. One place at
     * the hasher for both hashes, so a verified current password is not then refused for want of room.
     */
    async changePassword(userId: string, currentPassword: string, newPassword: string): Promise<number> {
      return passwords.withPlace(async (hashing) => {
        await reauthentication.verifyCurrentPassword(userId, currentPassword, hashing);
        const user = await users.findById(userId);
        if (!user) throw new InvalidCurrentPasswordError(); // deleted since the check
        passwordPolicy.check(newPassword, { email: user.email, name: user.name, currentPassword });
        const epoch = await users.updatePasswordHash(userId, await hashing.hash(newPassword));
        if (epoch === null) throw new InvalidCurrentPasswordError();
        return epoch;
      });
    },
  };
}
