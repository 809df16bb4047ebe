import { ConfigError, loadConfig } from '../../config/config';

/** A secret production accepts: long enough and not the .env.example placeholder. */
export const GOOD_SECRET = 'k3y-0123456789-abcdefghijklmnopqrstuvwxyz';

/** A complete production environment: loadConfig accepts it as it is. */
export const PRODUCTION: Readonly<Record<string, string>> = {
  NODE_ENV: 'production',
  PUBLIC_URL: 'https://app.example.test',
  DATABASE_URL: 'postgres://app:pw@db:5432/app',
  REDIS_URL: 'redis://:pw@redis:6379',
  SESSION_SECRET: GOOD_SECRET,
  TRUST_PROXY: '1',
};

/** The problems loadConfig refuses `env` with; empty when it loads. */
export function problemsOf(env: Record<string, string>, readFile?: (p: string) => string): readonly string[] {
  try {
    loadConfig(env, readFile);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}
