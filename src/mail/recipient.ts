import { createHash } from 'node:crypto';

/**
 * The SHA-256 of an address as the app compares addresses (lowercased), in hex: a key that counts the
 * mails one address receives without the address itself sitting in Redis.
 */
export const addressDigest = (address: string): string =>
  createHash('sha256').update(address.toLowerCase()).digest('hex');

/**
 * The address as a short SHA-256: it ties the log events of one recipient together without writing
 * the address into the log. It hides nothing from someone who guesses the address and hashes it.
 */
export const recipientOf = (address: string): string => addressDigest(address).slice(0, 16);

/**
 * The address as a mail to someone else may show it: the first character of the local part and the
 * domain (`j***@example.com`). The notice of an email change goes to the old address, which may belong
 * to someone else by now; it names the new address only enough for its owner to recognise it.
 */
export function maskAddress(address: string): string {
  const at = address.lastIndexOf('@');
  return `${address.slice(0, 1)}***${address.slice(at)}`;
}
