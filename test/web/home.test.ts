import request from 'supertest';
import { createBrowser, csrfTokenIn, expectNoInlineCode, signInThroughForm } from '../support/browser';
import { createUser, signedIn } from '../support/factories';
import { useTestApp } from '../support/use-test-app';

describe('GET / (home)', () => {
  const t = useTestApp();

  test('when there is no session, then 303 to the login page with next=/', async () => {
    const res = await request(t.app).get('/');

    expect(res.status).toBe(303);
    expect(res.headers.location).toBe('/login?next=%2F');
  });

  // ASVS 5.0 7.4.4: the signed-in page offers logout.
  test('when signed in, then the page names the user and offers a logout form, never cached', async () => {
    const { email, password } = await createUser(t, { name: 'Ada Lovelace' });
    const browser = createBrowser(t.app);
    await signInThroughForm(browser, { email, password });

    const res = await browser.get('/');

    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.text).toContain('Signed in as <strong>Ada Lovelace</strong>');
    expect(res.text).toContain('<form method="post" action="/logout"');
    expect(res.text).toContain('<a href="/sessions">');
    expect(csrfTokenIn(res.text)).toBeTruthy();
    expectNoInlineCode(res.text);
  });

  // ASVS 5.0 1.1.2, 1.2.1, 1.3.7, 3.2.2: a value is escaped where the template renders it, as text.
  test('when the user’s name is markup, then it renders as text', async () => {
    const name = '<img src=x onerror=alert(1)>"\'&';
    const { email, password } = await createUser(t, { name });
    const browser = createBrowser(t.app);
    await signInThroughForm(browser, { email, password });

    const res = await browser.get('/');

    expect(res.status).toBe(200);
    expect(res.text).not.toContain('<img');
    expect(res.text).toContain('&lt;img src=x onerror=alert(1)&gt;&quot;&#39;&amp;');
    expectNoInlineCode(res.text);
  });

  test('when signed in through the API, then the same session opens the page', async () => {
    const { user, cookie } = await signedIn(t);

    const res = await request(t.app).get('/').set('Cookie', cookie);

    expect(res.status).toBe(200);
    expect(res.text).toContain(user.name);
  });
});

describe('POST /logout (the HTML form)', () => {
  const t = useTestApp();

  test('when signed in with the home page’s token, then 303 to /login and the old session cookie is dead', async () => {
    const { user, email, password } = await createUser(t);
    const browser = createBrowser(t.app);
    await signInThroughForm(browser, { email, password });
    const oldCookie = `sid=${browser.cookie('sid')}`;
    const home = await browser.get('/');

    const res = await browser.postForm('/logout', { _csrf: csrfTokenIn(home.text) });

    expect(res.status).toBe(303);
    expect(res.headers.location).toBe('/login');
    expect(browser.cookie('sid')).toBeUndefined();
    const me = await request(t.app).get('/api/auth/me').set('Cookie', oldCookie);
    expect(me.status).toBe(401);
    expect((await request(t.app).get('/').set('Cookie', oldCookie)).headers.location).toBe('/login?next=%2F');
    expect(t.logs.some((l) => l.event === 'auth.logout' && l.userId === user.id)).toBe(true);
  });

  // ASVS 5.0 14.3.1: what the browser kept of the signed-in pages goes with the session.
  test('when signed out through the form, then the answer tells the browser to clear the cache and storage of the site (ASVS 14.3.1)', async () => {
    const browser = createBrowser(t.app);
    await signInThroughForm(browser, await createUser(t));
    const home = await browser.get('/');

    const res = await browser.postForm('/logout', { _csrf: csrfTokenIn(home.text) });

    expect(res.status).toBe(303);
    expect(res.headers['clear-site-data']).toBe('"cache", "storage"');
  });

  test('when logged out, then the login page works again for a new sign-in', async () => {
    const { email, password } = await createUser(t);
    const browser = createBrowser(t.app);
    await signInThroughForm(browser, { email, password });
    const home = await browser.get('/');
    await browser.postForm('/logout', { _csrf: csrfTokenIn(home.text) });

    const again = await signInThroughForm(browser, { email, password });

    expect(again.status).toBe(303);
    expect((await browser.get('/')).status).toBe(200);
  });

  test('when there is no session, then 303 to /login and nothing else happens', async () => {
    const res = await request(t.app).post('/logout').type('form').send({});

    expect(res.status).toBe(303);
    expect(res.headers.location).toBe('/login');
  });

  test('when the body is JSON, then 415 as an HTML page', async () => {
    const { cookie } = await signedIn(t);

    const res = await request(t.app).post('/logout').set('Cookie', cookie).send({ _csrf: 'x' });

    expect(res.status).toBe(415);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect((await request(t.app).get('/api/auth/me').set('Cookie', cookie)).status).toBe(200);
  });
});
