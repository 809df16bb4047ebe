import { createPasswordPolicy, type PasswordContext } from '../../src/auth/password-policy';
import { PasswordRejectedError } from '../../src/errors';
import { BOUNDARY_PASSWORDS } from '../support/factories';

/** The policy on its own: every rule, its message, and the order the rules apply in. */

const SETTINGS = { passwordMinLength: 12, passwordMinScore: 3, passwordContextWords: [] };
const policy = createPasswordPolicy(SETTINGS);
const ALICE: PasswordContext = { email: 'alice.wonder@example.test', name: 'Alice Wonder' };
const STRONG = 'otters juggle brass lanterns';

/** The message the policy refuses with, or undefined when it accepts. */
async function refusal(
  password: string,
  context: PasswordContext = ALICE,
  p = policy,
): Promise<string | undefined> {
  try {
    await p.check(password, context);
    return undefined;
  } catch (error) {
    expect(error).toBeInstanceOf(PasswordRejectedError);
    return (error as PasswordRejectedError).message;
  }
}

describe('password policy', () => {
  test('when the password is a strong passphrase, then it is accepted', async () => {
    expect(await refusal(STRONG)).toBeUndefined();
  });

  test('when the boundary passwords the other tests use are measured, then they are as long as they claim', async () => {
    expect([...BOUNDARY_PASSWORDS.min12]).toHaveLength(12);
    expect([...BOUNDARY_PASSWORDS.max128]).toHaveLength(128);
    expect([...BOUNDARY_PASSWORDS.astral12]).toHaveLength(12);
    expect([...BOUNDARY_PASSWORDS.astral128]).toHaveLength(128);
    for (const password of Object.values(BOUNDARY_PASSWORDS)) expect(await refusal(password)).toBeUndefined();
  });

  test.each([
    ['password1234', /commonly used password/],
    ['qwertyuiop123', /commonly used password/],
    ['iloveyou2024!', /commonly used password/],
    ['123456789012', /commonly used password/],
  ])(
    'when the password is the common %j, then it is refused as too common, with the reason',
    async (pw, why) => {
      const message = await refusal(pw);
      expect(message).toMatch(/^The password is too common or easy to guess\./);
      expect(message).toMatch(why);
    },
  );

  test.each(['1qaz2wsx3edc4rfv', 'zxcvbnm,./asdfgh', 'asdfghjkl;1234'])(
    'when the password is the keyboard walk %j, then it is refused as easy to guess',
    async (pw) => {
      expect(await refusal(pw)).toMatch(/^The password is too common or easy to guess\./);
    },
  );

  test.each(['aaaaaaaaaaaa', 'abcdefghijklm'])(
    'when the password is the repetition or sequence %j, then it is refused as easy to guess',
    async (pw) => {
      expect(await refusal(pw)).toMatch(/^The password is too common or easy to guess\./);
    },
  );

  test.each(['alice.wonder-2024!x', 'x-ALICE.Wonder-x-2024'])(
    "when the password %j holds the email's local part in any case, then it is refused naming the email",
    async (pw) => {
      expect(await refusal(pw)).toBe(
        'The password must not contain your email address (the part before the @).',
      );
    },
  );

  test('when the local part is shorter than three characters, then a password holding it is not refused for that', async () => {
    expect(
      await refusal('jo-mauve-otter-9', { email: 'jo@example.test', name: 'Someone Else' }),
    ).toBeUndefined();
  });

  test.each([
    ['Grace Hopper', 'hopper-kettle-91'],
    ['Grace Hopper', 'GRACE lanterns 1906'],
    ['Mary-Jane Watson', 'jane kettle zebra 5'],
  ])(
    'when the name is %j and the password %j holds one of its words, then it is refused naming the name',
    async (name, pw) => {
      expect(await refusal(pw, { email: 'someone@example.test', name })).toBe(
        'The password must not contain your name.',
      );
    },
  );

  test('when the name has words under three characters, then a password holding them is not refused for that', async () => {
    expect(
      await refusal('total kettle zebra', { email: 'someone@example.test', name: 'Al Bo' }),
    ).toBeUndefined();
  });

  test('when the password is the email local part in l33t speak, then the estimate (given the account as input) refuses it', async () => {
    // No literal match for the contains-rule; zxcvbn alone scores it 4, with the account's words 2.
    const message = await refusal('@l1c3.w0nd3r-2024');

    expect(message).toMatch(/^The password is too common or easy to guess\./);
    expect(message).toMatch(/personal/);
  });

  test('when the new password is the current one, then it is refused as unchanged', async () => {
    expect(await refusal(STRONG, { ...ALICE, currentPassword: STRONG })).toBe(
      'The new password must be different from the current one.',
    );
  });

  test('when the new password differs from the current one only in case, then it is accepted', async () => {
    expect(await refusal(STRONG.toUpperCase(), { ...ALICE, currentPassword: STRONG })).toBeUndefined();
  });

  test('when a password breaks several rules, then the first in order is named: length, unchanged, email, name, strength', async () => {
    const current = 'alice.wonder';
    expect(await refusal('alice', { ...ALICE, currentPassword: 'alice' })).toMatch(/at least 12 characters/);
    expect(await refusal(current, { ...ALICE, currentPassword: current })).toMatch(
      /different from the current/,
    );
    expect(await refusal('alice.wonder', ALICE)).toMatch(/email address/);
    expect(await refusal('wonder123456', ALICE)).toMatch(/your name/);
  });

  test('when the minimum score is 0, then a weak but long password passes and the personal rules still apply', async () => {
    const lenient = createPasswordPolicy({ ...SETTINGS, passwordMinScore: 0 });

    expect(await refusal('password1234', ALICE, lenient)).toBeUndefined();
    expect(await refusal('alice.wonder-2024!x', ALICE, lenient)).toMatch(/email address/);
  });

  test('when the minimum score is 4, then a password that scores 3 is refused', async () => {
    const strict = createPasswordPolicy({ ...SETTINGS, passwordMinScore: 4 });
    const scoresThree = 'Summer2024!!';
    expect(await refusal(scoresThree)).toBeUndefined();

    expect(await refusal(scoresThree, ALICE, strict)).toMatch(/too common or easy to guess/);
  });
});

describe('password policy: the deployment context words (ASVS 6.1.2, 6.2.11)', () => {
  // What PASSWORD_CONTEXT_WORDS gives after parsing: lowercased (config/passwords.ts).
  const quantiva = createPasswordPolicy({ ...SETTINGS, passwordContextWords: ['quantiva', 'acme corp'] });
  const SOMEONE: PasswordContext = { email: 'someone@example.test', name: 'Someone Else' };

  test.each(['quantiva otters juggle brass', 'x-QuAnTiVa-kettle-1906', 'lanterns of ACME CORP at dawn'])(
    'when the password %j holds a listed word in any case, then it is refused naming the word',
    async (pw) => {
      expect(await refusal(pw, SOMEONE, quantiva)).toMatch(
        /^The password must not contain "(quantiva|acme corp)": names tied to this service are guessed first\.$/,
      );
    },
  );

  test('when no words are listed, then the same passwords are accepted: the rule comes from the list', async () => {
    for (const pw of ['quantiva otters juggle brass', 'lanterns of ACME CORP at dawn']) {
      expect(await refusal(pw, SOMEONE)).toBeUndefined();
    }
  });

  test.each([
    ['in l33t speak', 'qu@nt1v@.2024'],
    ['reversed', 'avitnauq.2024'],
  ])(
    'when the password is a listed word %s, then the estimate (given the list as input) refuses it',
    async (_how, pw) => {
      // No literal match for the contains-rule; without the list the estimate accepts these.
      expect(await refusal(pw, SOMEONE)).toBeUndefined();

      expect(await refusal(pw, SOMEONE, quantiva)).toMatch(/^The password is too common or easy to guess\./);
    },
  );

  test('when the minimum score is 0, then a listed word is still refused', async () => {
    const lenient = createPasswordPolicy({
      ...SETTINGS,
      passwordMinScore: 0,
      passwordContextWords: ['quantiva'],
    });

    expect(await refusal('quantiva1234', SOMEONE, lenient)).toMatch(/must not contain "quantiva"/);
  });

  test('when a password holds both a name word and a listed word, then the name is named first', async () => {
    expect(await refusal('wonder quantiva kettle', ALICE, quantiva)).toBe(
      'The password must not contain your name.',
    );
  });
});
