/**
 * The user as the domain knows it: what routes, services, guards and sessions share. The repository
 * maps rows to it (users.repository.ts, the only file with SQL), and the password hash is never part of
 * it, so no layer above the repository can leak one by accident.
 */

export const ROLES = ['user', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export interface User {
  id: string;
  email: string;
  name: string;
  role: Role;
  createdAt: Date;
  updatedAt: Date;
  /** When the address was last proven to reach its owner (a mailed link opened); null until then. */
  emailVerifiedAt: Date | null;
  /** A second factor (TOTP) is enrolled and confirmed: signing in takes a code after the password. */
  mfaEnabled: boolean;
  /** Internal: bumped by password and role changes; a session from an older epoch is refused. */
  sessionEpoch: number;
}
