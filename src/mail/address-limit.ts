import type { AppConfig } from '../../config/config';
import { createLimiter, HOUR_S, isRefused, retryAfterS, spendPoint } from '../lib/rate-limiter';
import type { RedisClient } from '../lib/redis';
import { addressDigest } from './recipient';

/** What spending one of an address's mails gave: a mail may go, or not (and whether to log it). */
export type AddressAllowance =
  { allowed: true } | { allowed: false; firstRefusal: boolean; retryAfterS: number };

export type MailAddressLimit = ReturnType<typeof createMailAddressLimit>;

/**
 * At most MAIL_MAX_PER_ADDRESS_PER_HOUR mails to one address per hour, whoever asks for them: the
 * per-client limit alone would let an attacker with many addresses bury one inbox under reset mails,
 * or with one account bury a stranger's inbox under email change confirmations (mail bombing), and
 * make the app's relay look like a spam source. The key is the address's SHA-256,
 * so Redis never holds the address. A point is spent whether or not an account uses the address, so
 * the limit behaves the same for both and reveals nothing.
 *
 * It counts the mails that carry a link someone asked for (a reset, a verification, a change's
 * confirmation). The notices an account's own address gets after a change to the account (its password
 * changed, a change of its address asked for) are never counted and never held back: an attacker who
 * first spent the allowance must not be able to silence the warning of a takeover. Those notices are
 * bounded by what triggers them (a reset link, the per-user current-password budget).
 */
export function createMailAddressLimit(config: AppConfig, redis: RedisClient) {
  const limiter = createLimiter(config, redis, {
    name: 'mail-address',
    points: config.rateLimits.mailsPerAddressPerHour,
    durationS: HOUR_S,
  });
  return {
    async spend(address: string): Promise<AddressAllowance> {
      const state = await spendPoint(limiter, addressDigest(address));
      if (!isRefused(limiter, state)) return { allowed: true };
      // Only the request that crosses the limit is logged: a bombing run is one line per address-hour.
      const firstRefusal = state.consumedPoints === limiter.points + 1;
      return { allowed: false, firstRefusal, retryAfterS: retryAfterS(state) };
    },
  };
}
