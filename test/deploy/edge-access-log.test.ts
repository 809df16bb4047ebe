import { readFileSync } from 'node:fs';
import path from 'node:path';
import { loadCompose, requireService } from '../support/compose';
import { ROOT } from '../support/run-script';

/**
 * nginx's access log format, read from the template: what each line keeps of a request's URL and
 * referer. The maps are evaluated here as nginx evaluates them (first matching regular expression,
 * named captures substituted into the value, else `default`); a run of nginx 1.22 gave the same lines
 * (ADR 0040). The live edge suites (test/edge) exercise the rest of the template.
 */

const template = readFileSync(path.join(ROOT, 'nginx/templates/default.conf.template'), 'utf8');

/** The `edge` log_format's text, its quoted pieces joined. */
function edgeFormat(): string {
  const directive = /log_format edge ((?:'[^']*'\s*)+);/.exec(template);
  if (!directive) throw new Error('no log_format edge in the template');
  return [...directive[1]!.matchAll(/'([^']*)'/g)].map((m) => m[1]).join('');
}

/** The variable a `map $source $target { … }` block sets, as a function of the source's value. */
function mapOf(target: string): (value: string) => string {
  const block = new RegExp(`map \\$\\w+ \\$${target} \\{([^}]*)\\}`).exec(template);
  if (!block) throw new Error(`no map sets $${target}`);
  const unquote = (word: string) => word.replace(/^"(.*)"$/, '$1');
  const entries = [...block[1]!.matchAll(/^\s*("[^"]*"|\S+)\s+("[^"]*"|\S+);/gm)].map(
    (m): [string, string] => [unquote(m[1]!), unquote(m[2]!)],
  );
  return (value) => {
    for (const [source, result] of entries) {
      if (source === 'default') continue;
      const match = source.startsWith('~') ? new RegExp(source.slice(1)).exec(value) : null;
      if (match) return result.replace(/\$(\w+)/g, (_, name: string) => match.groups?.[name] ?? '');
      if (!source.startsWith('~') && source === value) return result;
    }
    const fallback = entries.find(([source]) => source === 'default')?.[1];
    return fallback === undefined ? '' : fallback.startsWith('$') ? value : fallback;
  };
}

// ASVS 5.0 14.2.1, 16.2.5: a query's values stay out of nginx's access log (ADR 0040).
describe('nginx access log: the query of a request', () => {
  const format = edgeFormat();

  test('when the edge format is read, then no variable that carries the query or the raw request line is in it', () => {
    const variables = [...format.matchAll(/\$(\w+)/g)].map((m) => m[1]!);
    const carriers = variables.filter((name) =>
      /^(request|request_uri|args|query_string|is_args|http_referer)$|^arg_/.test(name),
    );

    expect(carriers).toEqual([]);
    expect(format).toContain('"$edge_logged_method $edge_logged_uri $server_protocol"');
    expect(format).toContain('"$edge_logged_referer"');
  });

  test('when the method is read from the request line, then only a method is taken from it, never the rest', () => {
    // $request_method turns into GET when nginx redirects to an error page, so the method comes from
    // the raw request line, through a map that keeps its first word only if it is a method.
    const method = mapOf('edge_logged_method');
    expect(method('POST /reset-password?token=s3cr3t HTTP/1.1')).toBe('POST');
    expect(method('GET /?token=s3cr3t HTTP/1.1')).toBe('GET');
    expect(method('/?token=s3cr3t HTTP/1.1')).toBe('-');
    expect(method('token=s3cr3t /x HTTP/1.1')).toBe('-');
    expect(method('GARBAGE')).toBe('-');
  });

  test.each([
    ['/reset-password?token=s3cr3t-t0ken&next=/users', '/reset-password?[redacted]'],
    ['/verify-email?s3cr3t-t0ken', '/verify-email?[redacted]'],
    ['/login?', '/login?[redacted]'],
    ['/api/users/42', '/api/users/42'],
  ])('when the request target is %s, then the line shows %s', (target, logged) => {
    expect(mapOf('edge_logged_uri')(target)).toBe(logged);
  });

  test.each([
    ['https://mail.example.test/read?message=s3cr3t-t0ken', 'https://mail.example.test/read?[redacted]'],
    ['https://app.example.test/users', 'https://app.example.test/users'],
    ['', '-'],
  ])('when the referer is "%s", then the line shows "%s"', (referer, logged) => {
    expect(mapOf('edge_logged_referer')(referer)).toBe(logged);
  });
});

// ASVS 5.0 16.2.2: nginx's time says its offset, and the deployments leave it at UTC.
describe('nginx access log: the time of a request', () => {
  test('when the edge format is read, then its time is one that carries its offset, and compose gives nginx no TZ', () => {
    const times = [...edgeFormat().matchAll(/\$(time_\w+)/g)].map((m) => m[1]);
    const nginx = requireService(loadCompose({}), 'nginx');

    // $time_local ends in its offset (+0000 under UTC); $time_iso8601 too. $msec would have none.
    expect(times).toEqual(['time_local']);
    expect(Object.keys(nginx.environment ?? {})).not.toContain('TZ');
  });
});
