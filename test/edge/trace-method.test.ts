import { accessLineOf } from '../support/log-lines';
import { describeAppBehindEdge, headerCount } from '../support/nginx-edge';

/**
 * ASVS 13.4.4 at the edge: TRACE, and TRACK (IIS's name for it), are refused by nginx on both of its
 * servers, in the app's envelope with Allow, and never reach the app. The app's own refusal, for when it
 * is reached without the edge: test/http/trace-method.test.ts.
 */

const ALLOW = 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS';

describeAppBehindEdge('TRACE and TRACK at the edge (ASVS 13.4.4)', (stack) => {
  test.each(['TRACE', 'TRACK'])(
    'when %s is sent over https or http, then nginx answers 405 method_not_allowed with Allow, and the app never sees it',
    async (method) => {
      for (const secure of [true, false]) {
        const send = secure ? stack().edge.https : stack().edge.http;
        const answer = await send('/api/auth/me', { method, headers: { cookie: '__Host-sid=echo-me' } });

        expect({ secure, status: answer.status }).toEqual({ secure, status: 405 });
        expect(answer.headers.allow).toBe(ALLOW);
        expect(answer.headers['content-type']).toBe('application/json; charset=utf-8');
        expect(JSON.parse(answer.body)).toEqual({
          error: {
            code: 'method_not_allowed',
            message: expect.any(String),
            requestId: answer.headers['x-request-id'],
          },
        });
        expect(answer.body).not.toContain('echo-me');
        expect(answer.headers['x-content-type-options']).toBe('nosniff');
        expect(headerCount(answer, 'strict-transport-security')).toBe(secure ? 1 : 0);
        expect(accessLineOf(stack().t, answer)).toBeUndefined();
      }
    },
  );
});
