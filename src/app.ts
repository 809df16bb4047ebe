import express, { type Express, type RequestHandler } from 'express';
import type { AppConfig } from '../config/config';
import { createAuthRouter, UNVERIFIED_API_ROUTES } from './auth/auth.routes';
import { createAuthService } from './auth/auth.service';
import { createBreachedPasswords } from './auth/breached-passwords';
import { createEmailVerificationService } from './auth/email-verification';
import { LOGIN_PATHS, refuseLoginWhileHashingIsFull } from './auth/login';
import { createLoginPseudonyms } from './auth/login-pseudonyms';
import { createLoginThrottle } from './auth/login-throttle';
import { createPasswordPolicy } from './auth/password-policy';
import { createPasswordResetService } from './auth/password-reset';
import { createReauthentication } from './auth/reauthentication';
import { createSessionIndex, createSessionMiddleware, loadSessionUser } from './auth/sessions';
import { createUserSessions } from './auth/user-sessions';
import { createUserSessionsRouter } from './auth/user-sessions.routes';
import { createAccessLog, provideRequestLogger } from './http/access-log';
import { createRequestLogContext } from './http/request-log-context';
import { chain } from './http/chain';
import { concurrently } from './http/concurrently';
import { createErrorHandler, notFound } from './http/error-handler';
import { crossOriginGuard } from './http/cross-origin';
import { createHealthRouter, type Lifecycle } from './http/health';
import { jsonBody } from './http/json-body';
import { refuseTrace } from './http/methods';
import { createRequestLimits } from './http/rate-limit';
import { requireVerifiedEmail } from './http/require-verified-email';
import { requestContext } from './http/request-context';
import { noStore, securityHeaders } from './http/security-headers';
import type { Db } from './lib/db';
import type { Logger } from './lib/logger';
import { createPasswordQueue } from './lib/password-queue';
import type { PasswordHasher } from './lib/passwords';
import type { RedisClient } from './lib/redis';
import { createMailAddressLimit } from './mail/address-limit';
import { createMailer } from './mail/mailer';
import { createMailTemplates } from './mail/mail-templates';
import type { Outbox } from './mail/outbox';
import type { Metrics } from './metrics/metrics';
import { createMfaAdminRouter, createMfaRouter, ENROLMENT_API_ROUTES } from './mfa/mfa.routes';
import { createMfaService } from './mfa/mfa.service';
import { requireMfaForAdmins } from './mfa/require-mfa';
import { createOpenApiRouter } from './openapi/openapi.routes';
import { createEmailChange } from './users/email-change';
import { createEmailChangeRouter } from './users/email-change.routes';
import { createUsersRouter } from './users/users.routes';
import type { UserCache } from './users/user-cache';
import { createUsersService } from './users/users.service';
import { createErrorPageRenderer } from './web/error-page';
import { createViews } from './web/views';
import { ENROLMENT_PAGES } from './web/mfa.pages';
import { UNVERIFIED_VERIFICATION_PAGES } from './web/email-verification.pages';
import { createStaticHandler, createWebRouter, UNVERIFIED_PAGES } from './web/web.routes';

/** Where the stylesheet and scripts are served (named for the request metrics' label too). */
const STATIC_MOUNT = '/static';

export interface AppDeps {
  config: AppConfig;
  db: Db;
  redis: RedisClient;
  logger: Logger;
  passwords: PasswordHasher;
  lifecycle: Lifecycle;
  /**
   * Where mails wait to be sent (src/mail/outbox.ts), null when mail is off (and with it the flows
   * that need it). The caller makes it, from the configured transport, and drains it at shutdown.
   */
  outbox: Outbox | null;
  /**
   * Where counts and durations go (src/metrics), when METRICS_PORT is set; the caller serves its
   * registry on the metrics listener. Absent: nothing is recorded, and no request pays for it.
   */
  metrics?: Metrics;
  /**
   * The signed-in users kept in memory (src/users/user-cache.ts), when USER_CACHE_TTL_S is above 0; the
   * caller makes it and closes it at shutdown. Absent: every signed-in request reads its user from Postgres.
   */
  userCache?: UserCache;
}

/** Composes the app from its dependencies. It never reads the environment and never listens. */
export function buildApp(deps: AppDeps): Express {
  const { config, redis, logger, lifecycle, metrics, userCache } = deps;
  // With the user cache, a write returns once this instance has dropped the users it changed, so the
  // request that follows it reads them anew (read-your-writes; other instances follow a moment later).
  const db = userCache ? userCache.afterWrites(deps.db) : deps.db;
  // One bound per process in front of argon2: every hash of every route waits in this one line.
  const passwords = createPasswordQueue(deps.passwords, config.hashing, metrics?.hashRefused);
  metrics?.watch({ db, redis, passwords });
  const logContext = createRequestLogContext(logger);

  const passwordPolicy = createPasswordPolicy(
    config,
    createBreachedPasswords(config, { logger: logContext.logger, onFailure: metrics?.breachCheckFailed }),
  );
  const sessions = createSessionIndex(config, redis);
  const reauthentication = createReauthentication({ config, redis, db, passwords });
  const userSessions = createUserSessions({ config, index: sessions, reauthentication });
  // What the mail flows share, or nothing when mail is off (and with it the flows that need it).
  const mail = deps.outbox && {
    mailer: createMailer({
      // Cached except in development, where an edited template shows in the next mail.
      templates: createMailTemplates({
        publicOrigin: config.publicOrigin,
        cache: config.env !== 'development',
      }),
      outbox: deps.outbox,
      logger,
    }),
    addressLimit: createMailAddressLimit(config, redis),
  };
  const emailChange = mail && createEmailChange({ db, ...mail });
  const usersService = createUsersService({
    db,
    passwords,
    passwordPolicy,
    sessions,
    reauthentication,
    emailChange,
  });
  const loginThrottle = createLoginThrottle(config, redis);
  const authService = createAuthService({
    db,
    passwords,
    passwordPolicy,
    loginThrottle,
    loginPseudonyms: createLoginPseudonyms(config),
    reauthentication,
    loginObserver: metrics,
  });
  const mfa = createMfaService({
    config,
    db,
    reauthentication,
    throttle: createLoginThrottle(config, redis, 'second_factor'),
    mailer: mail?.mailer ?? null,
  });
  const limits = createRequestLimits(config, redis);
  const passwordReset =
    mail && createPasswordResetService({ db, passwords, passwordPolicy, sessions, ...mail });
  const emailVerification = mail && createEmailVerificationService({ db, ...mail });

  const app = express();
  // First, so a request's duration covers every middleware; only when metrics are on (zero cost off).
  if (metrics) app.use(metrics.http.middleware);
  app.disable('x-powered-by');
  // Every dynamic answer is no-store (noStore below): no client keeps a copy to revalidate, so an ETag
  // (a SHA-1 of each body) would never be used. Static files keep theirs (serve-static's own).
  app.set('etag', false);
  provideRequestLogger(app, logger);
  // Believe X-Forwarded-* from exactly this many proxies: req.ip and req.secure come from them.
  app.set('trust proxy', config.trustProxy);
  // Node's querystring: no nested objects from `a[b]=c`; a repeated key gives an array that the
  // zod schemas refuse.
  app.set('query parser', 'simple');

  // What every request passes, probes included, as one layer of the router (http/chain.ts): the same
  // order as separate app.use calls, for less work per request.
  app.use(
    chain(
      requestContext,
      // From here on, code below the request logs with the request's id (http/request-log-context.ts).
      logContext.middleware,
      securityHeaders({ hsts: config.hstsEnabled }),
    ),
  );
  // Probes are neither rate limited, logged nor tied to sessions: an orchestrator polls them constantly.
  // Answered before the access log, whose per-request loggers they would pay for without a line to show.
  // A layer of its own, never inside a chain: the request metrics and the API description find routes
  // by walking the router's layers, and a router inside a chain is hidden from them.
  app.use(createHealthRouter({ db, redis, lifecycle }));
  app.use(
    chain(
      // A developer's terminal gets one short line per request; every other mode the full structured line.
      createAccessLog({ logger, verbose: config.env !== 'development' }),
      // TRACE echoes a request back, credentials included: refused on every path, probes and static
      // files too, before any router could answer it (ASVS 13.4.4).
      refuseTrace,
    ),
  );
  // Pages (src/web): the stylesheet is served here, before the limiter, no-store and the session, so a
  // static file costs no Redis round trip and keeps its own Cache-Control.
  app.use(STATIC_MOUNT, createStaticHandler());
  // A login flood is refused here while the password line is full, before the limiter's round trip
  // and the body are spent on it (src/auth/login.ts).
  for (const path of LOGIN_PATHS) app.post(path, refuseLoginWhileHashingIsFull(passwords, metrics));
  const findSessionUser = userCache ? userCache.through(usersService.findById) : usersService.findById;
  // What every request past the static files passes, again as one layer (http/chain.ts).
  const signedInChecks: RequestHandler[] = [
    // The limiter's EVAL and the session's GET leave in one Redis write: one round trip, not two. A
    // refused request still gets its 429 before the cross-origin guard and any route (http/concurrently.ts).
    concurrently(limits.perClient, createSessionMiddleware(config, redis)),
    crossOriginGuard(config.publicOrigin),
    noStore,
    loadSessionUser({
      config,
      index: sessions,
      // The one lookup of every signed-in request, so the one that is cached; routes that read a user to
      // act on it read Postgres.
      findUser: findSessionUser,
      rereadUser: userCache
        ? (id) => {
            userCache.forget(id);
            return findSessionUser(id);
          }
        : undefined,
    }),
  ];
  // REQUIRE_VERIFIED_EMAIL: an unverified user may only verify, see who they are, sign in again and
  // sign out; every other route, API or page, refuses them (403 email_unverified), later ones included
  // (ADR 0017).
  if (config.requireVerifiedEmail) {
    signedInChecks.push(
      requireVerifiedEmail([...UNVERIFIED_API_ROUTES, ...UNVERIFIED_PAGES, ...UNVERIFIED_VERIFICATION_PAGES]),
    );
  }
  // REQUIRE_MFA_FOR_ADMINS: an admin without a second factor may do what an unverified user may, and
  // enrol one; every other route, admin routes first among them, refuses them (403 mfa_required).
  if (config.requireMfaForAdmins) {
    signedInChecks.push(
      requireMfaForAdmins([
        ...UNVERIFIED_API_ROUTES,
        ...UNVERIFIED_PAGES,
        ...UNVERIFIED_VERIFICATION_PAGES,
        ...ENROLMENT_API_ROUTES,
        ...ENROLMENT_PAGES,
      ]),
    );
  }
  app.use(chain(...signedInChecks));

  const api = express.Router();
  api.use(jsonBody);
  // The API description is a development aid; production answers 404 here like any unknown path.
  if (config.env === 'development') api.use(createOpenApiRouter());
  api.use(
    '/auth',
    createAuthRouter({
      config,
      authService,
      usersService,
      sessions,
      mfa,
      passwordReset,
      emailVerification,
      limits,
      codeStepObserver: metrics,
    }),
  );
  api.use('/auth/mfa', createMfaRouter({ mfa, sessions }));
  // The mailed links share one per-client budget, whatever they do.
  api.use('/auth/email-change', createEmailChangeRouter({ emailChange, limit: limits.passwordReset }));
  api.use('/users', createMfaAdminRouter({ mfa, sessions, findUser: usersService.findById }));
  api.use('/users', createUsersRouter({ usersService, sessions, config, emailVerification }));
  // /auth/sessions, /users/:id/sessions and /sessions: one feature, one router (paths written in full).
  api.use(createUserSessionsRouter({ config, index: sessions, userSessions, usersService }));
  app.use('/api', api);

  // Pages (src/web): login, home, logout, sessions, password reset, email verification; browser routes get HTML error pages, /api keeps JSON.
  const views = createViews(config);
  app.use(
    createWebRouter({
      config,
      views,
      authService,
      sessions,
      userSessions,
      mfa,
      findUser: usersService.findById,
      passwordReset,
      emailVerification,
      emailChange,
      passwordResetLimit: limits.passwordReset,
      codeStepObserver: metrics,
    }),
  );

  app.use(notFound);
  app.use(
    createErrorHandler({
      exposeStack: config.env === 'development',
      renderPage: createErrorPageRenderer(views),
      onRateLimited: metrics?.rateLimited,
      busyRefusalDelayMs: config.hashing.refusalDelayMs,
    }),
  );
  // Every route exists now: the request metrics learn their templates (the static files by mount).
  metrics?.http.learnRoutes(app, [STATIC_MOUNT]);
  return app;
}
