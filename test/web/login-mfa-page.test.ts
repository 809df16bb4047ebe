import { expectError } from '../support/assertions';
import {
  createBrowser,
  csrfTokenIn,
  expectNoInlineCode,
  hiddenField,
  signInThroughForm,
} from '../support/browser';
import { me, signedIn } from '../support/factories';
import { awayFromStepEdge, codeAt, enrolTotp, MFA_ENV } from '../support/mfa';
import { useTestApp } from '../support/use-test-app';

/**
 * The code step of the form login (ASVS 5.0 6.3.3: the pages are no weaker than the API): the same
 * challenge, codes, throttle and CSRF protection as POST /api/auth/login/mfa.
 */
describe('GET and POST /login/mfa (ASVS 5.0 6.3.3)', () => {
  const t = useTestApp(MFA_ENV);

  async function enrolledBrowser() {
    const created = await signedIn(t);
    const { secret, recoveryCodes } = await enrolTotp(t, created.cookie, created.password);
    const browser = createBrowser(t.app);
    return { ...created, secret, recoveryCodes, browser };
  }

  test('when an enrolled user signs in through the form, then the code page follows, and the right code signs in and goes to next', async () => {
    await awayFromStepEdge();
    const { browser, email, password, secret, user } = await enrolledBrowser();

    const passwordStep = await signInThroughForm(browser, { email, password }, '/account');
    expect(passwordStep.status).toBe(303);
    expect(passwordStep.headers.location).toBe('/login/mfa?next=%2Faccount');
    // Not signed in yet: home sends the browser back to the login page.
    expect((await browser.get('/')).status).toBe(303);
    const page = await browser.get(passwordStep.headers.location!);
    expect(page.status).toBe(200);
    expectNoInlineCode(page.text);
    expect(page.text).toContain('autocomplete="one-time-code"');

    const res = await browser.postForm('/login/mfa', {
      _csrf: csrfTokenIn(page.text),
      next: hiddenField(page.text, 'next')!,
      code: await codeAt(secret, 1),
    });

    expect(res.status).toBe(303);
    expect(res.headers.location).toBe('/account');
    const self = await me(t, browser.cookieHeader());
    expect(self.body.id).toBe(user.id);
  });

  test('when the code is wrong, then the page comes back with 401 and a message; a recovery code then signs in', async () => {
    const { browser, email, password, recoveryCodes } = await enrolledBrowser();
    await signInThroughForm(browser, { email, password });
    const page = await browser.get('/login/mfa');

    const wrong = await browser.postForm('/login/mfa', {
      _csrf: csrfTokenIn(page.text),
      next: '/',
      code: '000000x',
    });
    expect(wrong.status).toBe(401);
    expect(wrong.text).toContain('The code is incorrect or was already used.');
    const right = await browser.postForm('/login/mfa', {
      _csrf: csrfTokenIn(wrong.text),
      next: '/',
      code: recoveryCodes[0]!,
    });

    expect(right.status).toBe(303);
    expect((await me(t, browser.cookieHeader())).status).toBe(200);
  });

  test('when the form comes without its CSRF token, then 403 csrf_invalid and nobody is signed in (ASVS 5.0 3.5.1)', async () => {
    await awayFromStepEdge();
    const { browser, email, password, secret } = await enrolledBrowser();
    await signInThroughForm(browser, { email, password });

    const res = await browser.postForm('/login/mfa', { next: '/', code: await codeAt(secret, 1) });

    expect(res.status).toBe(403);
    expectError(await me(t, browser.cookieHeader()), 401, 'unauthenticated');
  });

  test('when no password step is waiting, then the code page sends the browser to the login page', async () => {
    const browser = createBrowser(t.app);

    const res = await browser.get('/login/mfa?next=%2Faccount');

    expect(res.status).toBe(303);
    expect(res.headers.location).toBe('/login?next=%2Faccount');
  });
});
