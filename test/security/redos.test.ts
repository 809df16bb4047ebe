import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { check } from 'recheck';
import ts from 'typescript';

/**
 * ReDoS guard (OWASP "Regular expression Denial of Service"; ASVS 1.5 / CWE-1333): every regular
 * expression in the app's source is analysed by recheck, and an unsafe one (super-linear backtracking on
 * some input) fails the run. Expressions are found by parsing the TypeScript, not by grepping, so a `/`
 * in a comment or a string is never mistaken for one and none hides behind unusual formatting.
 */

const ROOT = path.resolve(__dirname, '..', '..');
const SCANNED_DIRS = ['src', 'config'];

/**
 * A RegExp built from a non-literal (a variable, a template with substitutions) cannot be checked here,
 * and one built from input is a ReDoS and injection risk of its own. Each such call must be listed with
 * the reason it is safe, keyed by `file: call text`, e.g.
 * `'src/x.ts: new RegExp(pattern)': 'pattern is escaped with escapeRegExp and anchored'`.
 */
const DYNAMIC_REGEXP_ALLOWLIST: Readonly<Record<string, string>> = {};

// recheck's default backend spawns its native binary or a JVM agent, which lives on after the tests and
// exists only for some platforms. 'worker' runs its JavaScript build in a worker thread: the same
// analysis, offline, on any platform, with nothing left running (in-thread 'pure' is twice as slow
// inside Jest's sandbox).
process.env.RECHECK_BACKEND = 'worker';
/** Per expression; an analysis that runs out of time reports `unknown`, which fails like `vulnerable`. */
const CHECK_TIMEOUT_MS = 10_000;

interface FoundRegExp {
  where: string;
  source: string;
  flags: string;
}

interface Collected {
  regexps: FoundRegExp[];
  /** `file: call text` of RegExp constructions whose pattern or flags are not literals. */
  dynamic: string[];
}

const isRegExpCallee = (expr: ts.Expression) =>
  (ts.isIdentifier(expr) && expr.text === 'RegExp') ||
  (ts.isPropertyAccessExpression(expr) && expr.name.text === 'RegExp'); // globalThis.RegExp

const literalText = (node: ts.Node | undefined) =>
  node && (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) ? node.text : undefined;

/** Regex literals, and `new RegExp(...)` / `RegExp(...)` calls, in one file's text. */
function collectRegExps(file: string, text: string): Collected {
  const sourceFile = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const found: Collected = { regexps: [], dynamic: [] };
  const where = (node: ts.Node) =>
    `${file}:${sourceFile.getLineAndCharacterOfPosition(node.getStart()).line + 1}`;

  const visit = (node: ts.Node): void => {
    if (ts.isRegularExpressionLiteral(node)) {
      const lastSlash = node.text.lastIndexOf('/');
      found.regexps.push({
        where: where(node),
        source: node.text.slice(1, lastSlash),
        flags: node.text.slice(lastSlash + 1),
      });
    } else if ((ts.isNewExpression(node) || ts.isCallExpression(node)) && isRegExpCallee(node.expression)) {
      const [patternArg, flagsArg] = node.arguments ?? [];
      const source = literalText(patternArg);
      const flags = flagsArg === undefined ? '' : literalText(flagsArg);
      if (source !== undefined && flags !== undefined)
        found.regexps.push({ where: where(node), source, flags });
      else found.dynamic.push(`${file}: ${node.getText(sourceFile)}`);
    }
    ts.forEachChild(node, visit);
  };
  visit(sourceFile);
  return found;
}

function collectFromSourceTree(): Collected {
  const all: Collected = { regexps: [], dynamic: [] };
  for (const dir of SCANNED_DIRS) {
    const files = readdirSync(path.join(ROOT, dir), { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.ts'))
      .sort();
    for (const file of files) {
      const relative = path.posix.join(dir, file.split(path.sep).join('/'));
      const found = collectRegExps(relative, readFileSync(path.join(ROOT, relative), 'utf8'));
      all.regexps.push(...found.regexps);
      all.dynamic.push(...found.dynamic);
    }
  }
  return all;
}

const collected = collectFromSourceTree();

describe('regular expressions in src/ and config/ (ReDoS)', () => {
  test('when the collector reads code with every form of RegExp, then it finds each and tells literal from dynamic', () => {
    const code = [
      'const a = /^a+$/u; // not /a comment/',
      "const s = 'not /a regex/ either';",
      "const b = new RegExp('^b\\\\d+$', 'i');",
      'const c = RegExp(`^c$`);',
      'const d = new globalThis.RegExp("^d$");',
      'const e = new RegExp(pattern);',
      "const f = new RegExp('^f$', flags);",
      'const g = new RegExp(`^${name}$`);',
    ].join('\n');

    const found = collectRegExps('example.ts', code);

    expect(found.regexps).toEqual([
      { where: 'example.ts:1', source: '^a+$', flags: 'u' },
      { where: 'example.ts:3', source: '^b\\d+$', flags: 'i' },
      { where: 'example.ts:4', source: '^c$', flags: '' },
      { where: 'example.ts:5', source: '^d$', flags: '' },
    ]);
    expect(found.dynamic).toEqual([
      'example.ts: new RegExp(pattern)',
      "example.ts: new RegExp('^f$', flags)",
      'example.ts: new RegExp(`^${name}$`)',
    ]);
  });

  test('when the checker is given known-bad patterns, then it reports them vulnerable (the check can fail)', async () => {
    for (const source of ['^(a+)+$', '^(a|a)*$', '^(\\w+\\s?)*$']) {
      const result = await check(source, '', { timeout: CHECK_TIMEOUT_MS });
      expect({ source, status: result.status }).toEqual({ source, status: 'vulnerable' });
    }
  });

  test('when the source tree is scanned, then it yields at least the expressions known to be there', () => {
    // A floor, not an exact count: a collector that silently finds nothing must not pass the checks below.
    expect(collected.regexps.length).toBeGreaterThanOrEqual(10);
    expect(collected.regexps.some((r) => r.where.startsWith('config/'))).toBe(true);
  });

  // ASVS 5.0 1.2.9: no expression is built from input.
  test('when a RegExp is built from a non-literal, then it is in the allowlist with a reason, and every entry is still used', () => {
    expect(collected.dynamic.filter((call) => !(call in DYNAMIC_REGEXP_ALLOWLIST))).toEqual([]);
    expect(Object.keys(DYNAMIC_REGEXP_ALLOWLIST).filter((key) => !collected.dynamic.includes(key))).toEqual(
      [],
    );
  });

  test.each(collected.regexps.map((r) => [`${r.where} /${r.source}/${r.flags}`, r] as const))(
    'when %s is analysed, then recheck finds it safe',
    async (_label, { source, flags }) => {
      const result = await check(source, flags, { timeout: CHECK_TIMEOUT_MS });

      // On failure the diff shows the whole diagnosis: the attack string and hot spot say what to fix.
      expect(result).toEqual(expect.objectContaining({ status: 'safe' }));
    },
    CHECK_TIMEOUT_MS * 2,
  );
});
