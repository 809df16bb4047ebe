import { RedisStore } from 'connect-redis';
import express from 'express';
import session from 'express-session';
import helmet from 'helmet';
import { Pool } from 'pg';
import pino from 'pino';
import { pinoHttp } from 'pino-http';
import { RateLimiterRedis } from 'rate-limiter-flexible';
import { createClient } from 'redis';

/**
 * The naive assembly: the same building blocks as the app, put together the way their READMEs show,
 * with none of the app's hardening (no session index, no absolute timeout, no epoch check, no outage
 * handling). The app's signed-in read is compared with this one's: what does the hardening cost?
 * Same Postgres database and Redis as the app, its log written to a file.
 */
declare module 'express-session' {
  interface SessionData {
    naiveUserId: string;
  }
}

const env = process.env;

async function main(): Promise<void> {
  const redis = createClient({ url: env.REDIS_URL });
  redis.on('error', (err: Error) => process.stderr.write(`redis: ${err.message}\n`));
  await redis.connect();
  const pool = new Pool({ connectionString: env.DATABASE_URL, max: 10 });
  const limiter = new RateLimiterRedis({
    storeClient: redis,
    useRedisPackage: true,
    keyPrefix: `${env.REDIS_KEY_PREFIX}naive-rl`,
    points: 1_000_000_000, // counts every request, never refuses the bench
    duration: 60,
  });

  const app = express();
  app.use(helmet());
  app.use(express.json());
  app.use(pinoHttp({ logger: pino(pino.destination(env.LOG_FILE!)) }));
  app.use((req, res, next) => {
    limiter.consume(req.ip ?? 'unknown').then(
      () => next(),
      () => res.status(429).end(),
    );
  });
  app.use(
    session({
      store: new RedisStore({ client: redis, prefix: `${env.REDIS_KEY_PREFIX}naive-sess:` }),
      secret: env.SESSION_SECRET!,
      resave: false,
      saveUninitialized: false,
      cookie: { httpOnly: true, sameSite: 'lax', maxAge: 30 * 60 * 1000 },
    }),
  );

  // Setup only, never measured: signs the bench in as an existing user, no password asked.
  app.post('/session', (req, res) => {
    req.session.naiveUserId = String((req.body as { userId?: unknown }).userId);
    res.status(204).end();
  });

  app.get('/me', async (req, res) => {
    const userId = req.session.naiveUserId;
    if (!userId) return res.status(401).json({ error: 'unauthenticated' });
    const { rows } = await pool.query('SELECT id, email, name, role FROM users WHERE id = $1', [userId]);
    res.json(rows[0] ?? null);
  });

  app.listen(Number(env.PORT), env.HOST ?? '127.0.0.1');
}

main().catch((error: unknown) => {
  process.stderr.write(`${String(error)}\n`);
  process.exit(1);
});
