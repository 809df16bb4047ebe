import {
  createBrowser,
  csrfTokenIn,
  expectNoInlineCode,
  signInThroughForm,
  type Browser,
} from '../support/browser';
import { createUser, login, me, sessionCookie } from '../support/factories';
import { eventsNamed } from '../support/log-lines';
import { codeAt, codeStep, enrolTotp, MFA_ENV, passwordStep, type Enrolled } from '../support/mfa';
import { useTestApp } from '../support/use-test-app';

/** Every recovery code shown on a page, in order. */
const codesIn = (html: string): string[] =>
  [...html.matchAll(/<li><code>([A-Z2-7-]+)<\/code><\/li>/g)].map((m) => m[1]!);

// ASVS 5.0 6.5.1, 6.5.6: living with the second factor through the pages, as through the API: new
// recovery codes after the current password, and turning the factor off with the password and a code.
describe('the second factor`s own pages (ASVS 6.5.1, 6.5.6)', () => {
  const t = useTestApp(MFA_ENV);

  /** A user signed in through the page in `browser`, enrolled over the API with that session. */
  async function enrolledInBrowser(): Promise<{
    creds: { email: string; password: string };
    browser: Browser;
    enrolled: Enrolled;
  }> {
    const creds = await createUser(t);
    const browser = createBrowser(t.app);
    await signInThroughForm(browser, creds);
    const enrolled = await enrolTotp(t, browser.cookieHeader(), creds.password);
    return { creds, browser, enrolled };
  }

  const postFrom = async (browser: Browser, path: string, fields: Record<string, string>) => {
    const page = await browser.get('/mfa');
    return browser.postForm(path, { _csrf: csrfTokenIn(page.text), ...fields });
  };

  test('when the factor is on, then /mfa offers new recovery codes and turning it off, without inline code', async () => {
    const { browser } = await enrolledInBrowser();

    const page = await browser.get('/mfa');

    expect(page.status).toBe(200);
    expect(page.text).toContain('10 recovery codes are left');
    expect(page.text).toContain('action="/mfa/recovery-codes"');
    expect(page.text).toContain('action="/mfa/disable"');
    expectNoInlineCode(page.text);
  });

  test('when new recovery codes are asked with the password, then ten new ones are shown once and the old ones stop working', async () => {
    const { creds, browser, enrolled } = await enrolledInBrowser();

    const res = await postFrom(browser, '/mfa/recovery-codes', { currentPassword: creds.password });

    expect(res.status).toBe(200);
    const fresh = codesIn(res.text);
    expect(fresh).toHaveLength(10);
    expect(fresh.filter((code) => enrolled.recoveryCodes.includes(code))).toEqual([]);
    expect(eventsNamed(t, 'auth.recovery_codes_regenerated')).toHaveLength(1);
    const old = await codeStep(t, await passwordStep(t, creds), { recoveryCode: enrolled.recoveryCodes[0]! });
    expect(old.status).toBe(401);
    const renewed = await codeStep(t, await passwordStep(t, creds), { recoveryCode: fresh[0]! });
    expect(renewed.status).toBe(200);
  });

  test('when new recovery codes are asked with a wrong password, then 403 on the page and the old codes still work', async () => {
    const { creds, browser, enrolled } = await enrolledInBrowser();

    const res = await postFrom(browser, '/mfa/recovery-codes', { currentPassword: 'not my password at all' });

    expect(res.status).toBe(403);
    expect(codesIn(res.text)).toEqual([]);
    const old = await codeStep(t, await passwordStep(t, creds), { recoveryCode: enrolled.recoveryCodes[0]! });
    expect(old.status).toBe(200);
  });

  test('when the factor is turned off with the password and a code, then the password alone signs in and the other sessions end', async () => {
    const { creds, browser, enrolled } = await enrolledInBrowser();
    const elsewhere = await codeStep(t, await passwordStep(t, creds), {
      recoveryCode: enrolled.recoveryCodes[1]!,
    });
    const otherCookie = sessionCookie(elsewhere, t.config.session.cookieName)!;

    // The next time step: the current one was spent by the enrolment.
    const res = await postFrom(browser, '/mfa/disable', {
      currentPassword: creds.password,
      code: await codeAt(enrolled.secret, 1),
    });

    expect(res.status).toBe(200);
    expect(res.text).toContain('no longer asked for');
    expect((await me(t, otherCookie)).status).toBe(401);
    expect((await browser.get('/api/auth/me')).status).toBe(200);
    // login() fails unless the password alone answers 200 (a factor still on would answer 202).
    await login(t, creds);
  });

  test('when the factor is turned off with a wrong code or a wrong password, then it stays on', async () => {
    const { creds, browser, enrolled } = await enrolledInBrowser();

    const wrongCode = await postFrom(browser, '/mfa/disable', {
      currentPassword: creds.password,
      code: '000000',
    });
    const wrongPassword = await postFrom(browser, '/mfa/disable', {
      currentPassword: 'not my password at all',
      code: enrolled.recoveryCodes[2]!,
    });

    expect(wrongCode.status).toBe(401);
    expect(wrongPassword.status).toBe(403);
    expect((await browser.get('/mfa')).text).toContain('recovery codes are left');
  });

  test('when a form comes without its CSRF token, then 403 and nothing changes', async () => {
    const { creds, browser, enrolled } = await enrolledInBrowser();

    const res = await browser.postForm('/mfa/disable', {
      currentPassword: creds.password,
      code: enrolled.recoveryCodes[3]!,
    });

    expect(res.status).toBe(403);
    expect((await browser.get('/mfa')).text).toContain('recovery codes are left');
  });
});
