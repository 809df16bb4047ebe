import path from 'node:path';

/**
 * Just enough of Docker's file formats to check ours without a Docker engine: a Dockerfile reader
 * (continuation lines, comments, stages, global ARGs) and the .dockerignore matcher with the build
 * context's semantics (moby/patternmatcher: the last matching pattern wins, a pattern that matches a
 * parent directory matches everything under it, `!` re-includes).
 */

export interface Instruction {
  /** Upper case: FROM, RUN, COPY, ... */
  keyword: string;
  /** Everything after the keyword, continuation lines joined with a space. */
  args: string;
  line: number;
}

export interface Stage {
  /** The image or stage it starts from, with global ARGs substituted. */
  base: string;
  name: string | undefined;
  instructions: Instruction[];
}

export interface Dockerfile {
  globalArgs: Record<string, string>;
  stages: Stage[];
  /** Every comment line, without the `#`. */
  comments: string[];
}

export function parseDockerfile(text: string): Dockerfile {
  const comments: string[] = [];
  const instructions: Instruction[] = [];
  let pending: { parts: string[]; line: number } | undefined;
  text.split('\n').forEach((raw, index) => {
    const trimmed = raw.trim();
    if (trimmed.startsWith('#')) {
      comments.push(trimmed.slice(1).trim());
      return; // comments may sit between continuation lines too; Docker drops them
    }
    if (trimmed === '' && !pending) return;
    const continues = trimmed.endsWith('\\');
    const part = continues ? trimmed.slice(0, -1).trim() : trimmed;
    pending ??= { parts: [], line: index + 1 };
    pending.parts.push(part);
    if (continues) return;
    const joined = pending.parts.filter(Boolean).join(' ');
    const match = /^(\S+)\s*(.*)$/s.exec(joined)!;
    instructions.push({ keyword: match[1]!.toUpperCase(), args: match[2]!, line: pending.line });
    pending = undefined;
  });

  const globalArgs: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const instruction of instructions) {
    if (instruction.keyword === 'FROM') {
      const [image, as, name] = instruction.args.split(/\s+/);
      const base = image!.replace(/\$\{?(\w+)\}?/g, (_m, arg: string) => globalArgs[arg] ?? '');
      stages.push({ base, name: as?.toUpperCase() === 'AS' ? name : undefined, instructions: [] });
    } else if (stages.length === 0 && instruction.keyword === 'ARG') {
      const [name, value = ''] = instruction.args.split('=');
      globalArgs[name!.trim()] = value.trim();
    } else {
      stages.at(-1)?.instructions.push(instruction);
    }
  }
  return { globalArgs, stages, comments };
}

/** The array of an exec-form argument (`["node", "x.js"]`), or undefined for the shell form. */
export function execForm(args: string): string[] | undefined {
  if (!args.trim().startsWith('[')) return undefined;
  try {
    const parsed: unknown = JSON.parse(args);
    return Array.isArray(parsed) && parsed.every((a) => typeof a === 'string') ? parsed : undefined;
  } catch {
    return undefined; // Docker silently falls back to the shell form for invalid JSON
  }
}

/** `ENV A=1 B=2` (and the legacy `ENV A 1`) as a record. Values here never contain spaces. */
export function envOf(args: string): Record<string, string> {
  if (!args.includes('=')) {
    const [name, ...value] = args.split(/\s+/);
    return { [name!]: value.join(' ') };
  }
  return Object.fromEntries(
    args
      .split(/\s+/)
      .filter(Boolean)
      .map((pair) => {
        const at = pair.indexOf('=');
        return [pair.slice(0, at), pair.slice(at + 1).replace(/^"(.*)"$/, '$1')];
      }),
  );
}

interface IgnorePattern {
  exclusion: boolean;
  regex: RegExp;
}

/** Go's filepath.Match syntax plus `**`, anchored, as moby/patternmatcher compiles it. */
function compile(pattern: string): RegExp {
  let source = '';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === '*' && pattern[i + 1] === '*') {
      i++;
      if (pattern[i + 1] === '/') i++;
      source += i + 1 >= pattern.length ? '.*' : '(.*/)?';
    } else if (ch === '*') source += '[^/]*';
    else if (ch === '?') source += '[^/]';
    else if (ch === '[') {
      const end = pattern.indexOf(']', i);
      source += pattern.slice(i, end + 1).replace('[!', '[^');
      i = end;
    } else source += ch.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${source}$`);
}

export function parseDockerignore(text: string): IgnorePattern[] {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const exclusion = line.startsWith('!');
      const cleaned = path.posix.normalize((exclusion ? line.slice(1) : line).trim().replace(/^\/+/, ''));
      return { exclusion, regex: compile(cleaned.replace(/\/+$/, '')) };
    });
}

/** True when `file` (relative to the context, `/`-separated) is left out of the build context. */
export function isIgnored(patterns: IgnorePattern[], file: string): boolean {
  const parents = path.posix.dirname(file) === '.' ? [] : path.posix.dirname(file).split('/');
  let matched = false;
  for (const pattern of patterns) {
    // A `!` pattern can only un-match and a plain one only match: skip what cannot change the result.
    if (pattern.exclusion !== matched) continue;
    let match = pattern.regex.test(file);
    for (let i = 0; !match && i < parents.length; i++) {
      match = pattern.regex.test(parents.slice(0, i + 1).join('/'));
    }
    if (match) matched = !pattern.exclusion;
  }
  return matched;
}
