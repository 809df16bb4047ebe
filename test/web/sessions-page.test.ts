import request from 'supertest';
import {
  createBrowser,
  csrfTokenIn,
  expectNoInlineCode,
  signInThroughForm,
  type Browser,
} from '../support/browser';
import { createUser, login, me } from '../support/factories';
import { eventsNamed } from '../support/log-lines';
import { sidOf } from '../support/sessions';
import { useTestApp } from '../support/use-test-app';

/** The handles the page offers to end, in page order (`value` of each session's radio button). */
const handlesIn = (html: string): string[] =>
  [...html.matchAll(/<input type="radio" id="session-\d+" name="end" value="([A-Za-z0-9_-]{22})"/g)].map(
    (m) => m[1]!,
  );

// ASVS 5.0 7.5.2 through the pages: a user sees their sessions and ends them, with their password.
describe('the sessions page (ASVS 7.5.2)', () => {
  const t = useTestApp();

  /** A user signed in through the page in `browser`, and elsewhere through the API. */
  async function signedInTwice() {
    const creds = await createUser(t);
    const browser = createBrowser(t.app);
    await signInThroughForm(browser, creds);
    const elsewhere = await login(t, creds, {
      'User-Agent': 'Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0',
    });
    return { creds, browser, elsewhere };
  }

  const endThrough = async (browser: Browser, fields: Record<string, string>) => {
    const page = await browser.get('/sessions');
    return browser.postForm('/sessions/end', { _csrf: csrfTokenIn(page.text), ...fields });
  };

  test('when there is no session, then 303 to the login page, which comes back here', async () => {
    const res = await request(t.app).get('/sessions');

    expect(res.status).toBe(303);
    expect(res.headers.location).toBe('/login?next=%2Fsessions');
  });

  test('when signed in, then the page lists every session, marks this browser, shows no session id and needs no inline code', async () => {
    const { browser, elsewhere } = await signedInTwice();

    const res = await browser.get('/sessions');

    expect(res.status).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.text).toContain('(this browser');
    expect(res.text).toContain('<strong>Firefox on Linux</strong>, from 127.0.0.0/24');
    expect(handlesIn(res.text)).toHaveLength(1);
    expect(res.text).not.toContain(sidOf(elsewhere));
    expect(res.text).not.toContain(browser.cookie('sid'));
    expectNoInlineCode(res.text);
  });

  test('when the user chooses another session and gives the password, then that session ends and the page shows the rest', async () => {
    const { creds, browser, elsewhere } = await signedInTwice();
    const [handle] = handlesIn((await browser.get('/sessions')).text);

    const res = await endThrough(browser, { end: handle!, currentPassword: creds.password });

    expect(res.status).toBe(303);
    expect(res.headers.location).toBe('/sessions');
    expect((await me(t, elsewhere)).status).toBe(401);
    const after = await browser.get('/sessions');
    expect(after.status).toBe(200);
    expect(handlesIn(after.text)).toEqual([]);
    expect(eventsNamed(t, 'session.ended').some((l) => l.targetUserId === creds.user.id)).toBe(true);
  });

  test('when the user chooses every other session, then all of them end and this one continues', async () => {
    const { creds, browser, elsewhere } = await signedInTwice();
    const third = await login(t, creds);

    const res = await endThrough(browser, { end: 'others', currentPassword: creds.password });

    expect(res.status).toBe(303);
    expect((await me(t, elsewhere)).status).toBe(401);
    expect((await me(t, third)).status).toBe(401);
    expect((await browser.get('/sessions')).status).toBe(200);
  });

  test('when the password is wrong, then the page says so (403) and every session continues', async () => {
    const { browser, elsewhere } = await signedInTwice();

    const res = await endThrough(browser, { end: 'others', currentPassword: 'not the password at all' });

    expect(res.status).toBe(403);
    expect(res.text).toContain('The password is incorrect.');
    expect((await me(t, elsewhere)).status).toBe(200);
  });

  test('when the form comes without a CSRF token, or with a wrong one, then 403 and every session continues', async () => {
    const { creds, browser, elsewhere } = await signedInTwice();

    const missing = await browser.postForm('/sessions/end', {
      end: 'others',
      currentPassword: creds.password,
    });
    const wrong = await browser.postForm('/sessions/end', {
      _csrf: 'forged',
      end: 'others',
      currentPassword: creds.password,
    });

    for (const res of [missing, wrong]) {
      expect(res.status).toBe(403);
      expect(res.headers['content-type']).toMatch(/^text\/html/);
    }
    expect((await me(t, elsewhere)).status).toBe(200);
    expect(eventsNamed(t, 'session.ended').some((l) => l.targetUserId === creds.user.id)).toBe(false);
  });

  test('when no session is chosen, then 400 and the page asks again', async () => {
    const { creds, browser } = await signedInTwice();

    const res = await endThrough(browser, { currentPassword: creds.password });

    expect(res.status).toBe(400);
    expect(res.text).toContain('choose a session');
  });
});
