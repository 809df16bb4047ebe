import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { ROOT } from './run-script';

/** The parts of a compose service the deploy tests read. */
export interface ComposeService {
  image?: string;
  build?: unknown;
  command?: string[] | string;
  entrypoint?: string[] | string;
  user?: string;
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
  networks?: string[];
  network_mode?: string;
  depends_on?: Record<string, { condition: string; restart?: boolean }>;
  healthcheck?: { test?: string[]; disable?: boolean; interval?: string; timeout?: string };
  read_only?: boolean;
  tmpfs?: string[];
  cap_drop?: string[];
  cap_add?: string[];
  security_opt?: string[];
  init?: boolean;
  mem_limit?: string;
  pids_limit?: number;
  stop_grace_period?: string;
  restart?: string;
  privileged?: boolean;
  profiles?: string[];
}

export interface ComposeFile {
  name?: string;
  services: Record<string, ComposeService>;
  networks: Record<string, { internal?: boolean } | null>;
  volumes: Record<string, unknown>;
}

export const COMPOSE_PATH = path.join(ROOT, 'docker-compose.yml');

/** The file as YAML gives it: `${VAR}` references not yet interpolated, merge keys (`<<`) applied. */
export function loadRawCompose(): ComposeFile {
  return parse(readFileSync(COMPOSE_PATH, 'utf8'), { merge: true }) as ComposeFile;
}

const REFERENCE = /\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))/g;

/** Every variable a string value refers to, with its default when it has one (`${NAME:-default}`). */
export function referencesIn(value: string): { name: string; operator?: string; fallback?: string }[] {
  const found: { name: string; operator?: string; fallback?: string }[] = [];
  for (const match of value.replaceAll('$$', '').matchAll(REFERENCE)) {
    found.push({ name: match[1] ?? match[4]!, operator: match[2], fallback: match[3] });
  }
  return found;
}

/** Compose's interpolation of one string: `$$` is a literal `$`; `:-` also applies to empty values. */
export function interpolate(value: string, env: Record<string, string | undefined>): string {
  return value
    .split('$$')
    .map((part) =>
      part.replace(REFERENCE, (_m, braced: string | undefined, operator: string, fallback: string, bare) => {
        const name = braced ?? (bare as string);
        const current = env[name];
        if (operator === ':-') return current ? current : fallback;
        if (operator === '-') return current ?? fallback;
        if (operator) throw new Error(`unsupported interpolation ${operator} for ${name}`);
        return current ?? '';
      }),
    )
    .join('$');
}

/** Every string in a parsed YAML value, with its path (services.app.environment.PUBLIC_URL). */
export function stringsIn(value: unknown, at = ''): { path: string; value: string }[] {
  if (typeof value === 'string') return [{ path: at, value }];
  if (Array.isArray(value)) return value.flatMap((item, i) => stringsIn(item, `${at}[${i}]`));
  if (value && typeof value === 'object') {
    return Object.entries(value).flatMap(([key, item]) => stringsIn(item, at ? `${at}.${key}` : key));
  }
  return [];
}

/** The file as `docker compose config` would see it with the given shell environment (and no .env). */
export function loadCompose(env: Record<string, string | undefined> = {}): ComposeFile {
  const walk = (value: unknown): unknown => {
    if (typeof value === 'string') return interpolate(value, env);
    if (Array.isArray(value)) return value.map(walk);
    if (value && typeof value === 'object') {
      return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, walk(item)]));
    }
    return value;
  };
  return walk(loadRawCompose()) as ComposeFile;
}

/** A Go duration as compose writes it (`20s`, `1m30s`, `500ms`) in milliseconds. */
export function durationMs(value: string): number {
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let total = 0;
  const rest = value.replace(/(\d+(?:\.\d+)?)(ms|s|m|h)/g, (_m, amount: string, unit: string) => {
    total += Number(amount) * units[unit]!;
    return '';
  });
  if (rest !== '') throw new Error(`not a duration: ${value}`);
  return total;
}

/** A short-syntax volume entry: `source:target[:mode]`. */
export function parseVolume(entry: string): { source: string; target: string; readOnly: boolean } {
  const [source, target, mode] = entry.split(':');
  return { source: source!, target: target!, readOnly: mode?.split(',').includes('ro') ?? false };
}

/** The tag compose gives the image it builds from this repository (the app, migrate, secrets-init). */
export const APP_IMAGE = 'express-hardened-starter:local';

/** A service the deploy tests expect to exist: a missing one fails the test by name, not with a TypeError. */
export function requireService(file: ComposeFile, name: string): ComposeService {
  const found = file.services[name];
  if (!found) throw new Error(`no service ${name}`);
  return found;
}
