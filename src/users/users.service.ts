import { createAccountTokens } from '../auth/account-tokens';
import type { PasswordPolicy } from '../auth/password-policy';
import type { Reauthentication } from '../auth/reauthentication';
import type { SessionIndex } from '../auth/sessions';
import { ConcealedError, ForbiddenError, LastAdminError, NotFoundError, ValidationError } from '../errors';
import type { Db } from '../lib/db';
import type { PasswordHasher } from '../lib/passwords';
import type { EmailChange } from './email-change';
import type { Role, User } from './user';
import { createUsersRepository, type UserPosition, type UsersRepository } from './users.repository';

export interface NewUser {
  email: string;
  name: string;
  password: string;
  role: Role;
}

export interface UserChanges {
  name?: string | undefined;
  email?: string | undefined;
  role?: Role | undefined;
  currentPassword?: string | undefined;
}

/** A user after an update, and the address they asked to move to while it awaits confirmation. */
export interface UpdatedUser {
  user: User;
  pendingEmail: string | null;
  /** Whether the address itself changed (at once: an admin's change, or any with mail off). */
  emailChanged: boolean;
}

export type UsersService = ReturnType<typeof createUsersService>;

/**
 * The one way an account comes to exist, shared by the API and the seed script, so the password
 * policy cannot be skipped on any path.
 */
export async function createAccount(
  deps: { users: UsersRepository; passwords: PasswordHasher; passwordPolicy: PasswordPolicy },
  input: NewUser,
  { emailVerified = false }: { emailVerified?: boolean } = {},
): Promise<User> {
  await deps.passwordPolicy.check(input.password, { email: input.email, name: input.name });
  const passwordHash = await deps.passwords.hash(input.password);
  const { email, name, role } = input;
  return deps.users.insert({ email, name, role, passwordHash, emailVerified });
}

export function createUsersService(deps: {
  db: Db;
  passwords: PasswordHasher;
  passwordPolicy: PasswordPolicy;
  sessions: SessionIndex;
  reauthentication: Reauthentication;
  /** null when mail is off: a user's own change of address then takes effect at once, unverified. */
  emailChange: EmailChange | null;
}) {
  const { db, passwords, passwordPolicy, sessions, reauthentication, emailChange } = deps;
  const users = createUsersRepository(db);

  /**
   * Someone who may not see a user gets the same 404 as for an id that does not exist, so ids cannot
   * be probed for existence (ASVS 8.2: object-level authorization without an oracle).
   */
  function assertSelfOrAdmin(actor: User, id: string): void {
    if (actor.id !== id && actor.role !== 'admin') throw new ConcealedError();
  }

  return {
    findById: (id: string) => users.findById(id),

    createUser: (input: NewUser) => createAccount({ users, passwords, passwordPolicy }, input),

    async getUser(actor: User, id: string): Promise<User> {
      assertSelfOrAdmin(actor, id);
      // The actor was read from Postgres by this very request (loadSessionUser), after every revocation
      // check: reading oneself answers from that row instead of a second SELECT of the same one.
      if (actor.id === id) return actor;
      const user = await users.findById(id);
      if (!user) throw new NotFoundError();
      return user;
    },

    listUsers: (limit: number, after?: UserPosition) => users.list(limit, after),

    async updateUser(actor: User, id: string, changes: UserChanges, requestId: string): Promise<UpdatedUser> {
      assertSelfOrAdmin(actor, id);
      if (changes.role !== undefined && actor.role !== 'admin') {
        throw new ForbiddenError('Only an admin can change roles.');
      }
      const self = actor.id === id;
      // Changing one's own sign-in email is an account takeover step: ask for the password again.
      if (changes.email !== undefined && self) {
        if (changes.currentPassword === undefined) {
          throw new ValidationError([
            { path: 'body.currentPassword', message: 'is required to change your email' },
          ]);
        }
        await reauthentication.verifyCurrentPassword(id, changes.currentPassword);
      }
      // Moving to the address one already has changes nothing. With mail on, one's own new address
      // must answer a mailed link before it is used (email-change.ts); it is refused before any
      // other field changes, so a refused request changes nothing.
      const email = self && changes.email === actor.email ? undefined : changes.email;
      const awaited = self && email !== undefined && emailChange ? { email, emailChange } : null;
      if (awaited) await awaited.emailChange.admit(awaited.email);

      const { before, after } = await db.withTransaction(async (tx) => {
        const txUsers = createUsersRepository(tx);
        if (changes.role === 'user') {
          const admins = await txUsers.lockAdmins();
          if (admins.length === 1 && admins[0] === id) throw new LastAdminError();
        }
        const before = await txUsers.findById(id);
        if (!before) throw new NotFoundError();
        const fields = { name: changes.name, email: awaited ? undefined : email, role: changes.role };
        const unchanged = Object.values(fields).every((value) => value === undefined);
        const after = unchanged ? before : await txUsers.update(id, fields);
        if (!after) throw new NotFoundError();
        // The links mailed for the old address (its verification, a pending change, a reset) die with it.
        if (after.email !== before.email) {
          await createAccountTokens({ db: tx }).revoke(id, [
            'verify_email',
            'change_email',
            'password_reset',
          ]);
        }
        return { before, after };
      });

      // New privileges mean new sessions: nobody keeps a session minted under the old role.
      if (before.role !== after.role) await sessions.revokeAll(id);
      if (awaited) await awaited.emailChange.request(after, awaited.email, requestId);
      else if (emailChange && after.email !== before.email) {
        emailChange.notifyOldAddress(before, after.email, requestId);
      }
      return {
        user: after,
        pendingEmail: awaited?.email ?? null,
        emailChanged: after.email !== before.email,
      };
    },

    /**
     * Ends every session of every user (the admin's included): the session epochs move in Postgres,
     * the durable record, so it holds even for sessions a Redis failover brought back (ADR 0023). The
     * sessions' Redis keys are left to expire within the idle timeout rather than scanned for: each
     * is refused, and deleted, on its next request. Returns how many users it signed out.
     */
    endEverySession: (): Promise<number> => users.moveEverySessionEpoch(),

    async deleteUser(actor: User, id: string): Promise<void> {
      assertSelfOrAdmin(actor, id);
      await db.withTransaction(async (tx) => {
        const txUsers = createUsersRepository(tx);
        const admins = await txUsers.lockAdmins();
        const target = await txUsers.findById(id);
        if (!target) throw new NotFoundError();
        if (target.role === 'admin' && admins.length <= 1) throw new LastAdminError();
        await txUsers.delete(id);
      });
      await sessions.revokeAll(id);
    },
  };
}
