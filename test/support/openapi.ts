import Ajv2020 from 'ajv/dist/2020';
import type { Express } from 'express';
import type { Response } from 'supertest';
import type { createOpenApiDocument } from '../../src/openapi/openapi';

export type OpenApiDocument = ReturnType<typeof createOpenApiDocument>;
type Json = Record<string, unknown>;

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

/** Express's `/users/:id` as OpenAPI writes it: `/users/{id}`. */
const openApiPath = (expressPath: string) => expressPath.replace(/:(\w+)/g, '{$1}');

/** `METHOD /path` of every operation the document describes. */
export function operationsOf(doc: OpenApiDocument): string[] {
  return Object.entries(doc.paths ?? {}).flatMap(([path, item]) =>
    Object.keys(item as Json)
      .filter((key) => METHODS.includes(key))
      .map((method) => `${method.toUpperCase()} ${path}`),
  );
}

interface Layer {
  route?: { path: unknown; methods: Record<string, boolean> };
  handle: unknown;
  rawPath?: unknown;
}

/** The router mounted at `mountPath` in `stack`, for tests that add a route the way a feature would. */
export function mountedRouter(stack: readonly Layer[], mountPath: string): { stack: Layer[] } {
  const layer = stack.find((l) => l.rawPath === mountPath && Array.isArray((l.handle as Json).stack));
  if (!layer) throw new Error(`no router is mounted at ${mountPath}`);
  return layer.handle as { stack: Layer[] };
}

export function routerStack(app: Express): Layer[] {
  return (app.router as unknown as { stack: Layer[] }).stack;
}

/**
 * `METHOD /path` of every route an Express app registers, nested routers included, read from the built
 * app itself: a route added to any router shows up here without anyone listing it. A mount or route
 * path that is not a plain string (a regexp, an array) throws, so nothing is skipped silently. A path
 * with a route of its own ahead of the stack (the login gate of src/auth/login.ts) is listed once.
 */
export function routesOf(app: Express): string[] {
  const walk = (stack: readonly Layer[], prefix: string): string[] =>
    stack.flatMap((layer) => {
      if (layer.route) {
        const { path, methods } = layer.route;
        if (typeof path !== 'string') throw new Error(`a route under ${prefix || '/'} has no string path`);
        const full = path === '/' && prefix ? prefix : prefix + path;
        return Object.keys(methods)
          .filter((method) => method !== '_all')
          .map((method) => `${method.toUpperCase()} ${openApiPath(full)}`);
      }
      const nested = (layer.handle as { stack?: unknown } | null)?.stack;
      if (!Array.isArray(nested)) return []; // middleware, not a router
      if (typeof layer.rawPath !== 'string')
        throw new Error(`a router under ${prefix || '/'} has no string mount path`);
      return walk(nested as Layer[], layer.rawPath === '/' ? prefix : prefix + layer.rawPath);
    });
  return [...new Set(walk(routerStack(app), ''))];
}

/** Every error code the document lists, from the `code` enums of its error responses. */
export function errorCodesOf(doc: OpenApiDocument): Set<string> {
  const codes = new Set<string>();
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(visit);
    if (typeof node !== 'object' || node === null) return;
    const code = (node as { properties?: { error?: { properties?: { code?: { enum?: unknown } } } } })
      .properties?.error?.properties?.code?.enum;
    if (Array.isArray(code)) for (const c of code) codes.add(String(c));
    Object.values(node).forEach(visit);
  };
  visit(doc);
  return codes;
}

const DOC_ID = 'openapi.json';
const pointerSegment = (s: string) => encodeURIComponent(s.replace(/~/g, '~0').replace(/\//g, '~1'));

function resolvePointer(doc: OpenApiDocument, ref: string): Json {
  const value = ref
    .replace(/^#\//, '')
    .split('/')
    .map((s) => decodeURIComponent(s).replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce<unknown>((node, key) => (node as Json | undefined)?.[key], doc);
  if (typeof value !== 'object' || value === null) throw new Error(`${ref} points at nothing`);
  return value as Json;
}

/**
 * Checks answers against the document with a JSON Schema 2020-12 validator (OpenAPI 3.1's dialect): the
 * status must be one the operation lists, the body must match that response's schema (or be empty when
 * it has none), and its required headers must be there with values their schemas accept. It records the
 * statuses and codes it saw, so a test can tell what was never exercised.
 */
export function createResponseChecker(doc: OpenApiDocument) {
  // Formats are not asserted: zod writes a `pattern` next to every format it emits (uuid, email,
  // date-time), and the patterns are what the routes' own validation uses.
  const ajv = new Ajv2020({ strict: true, allErrors: true, validateFormats: false });
  // The document is added whole so that its `$ref`s resolve; its own top-level fields are not JSON
  // Schema keywords, and strict mode would refuse them without this.
  ajv.addVocabulary(['openapi', 'info', 'jsonSchemaDialect', 'servers', 'paths', 'webhooks', 'components']);
  ajv.addVocabulary(['security', 'tags', 'externalDocs']);
  ajv.addSchema(doc as object, DOC_ID);
  const validate = (pointer: string, value: unknown, what: string) => {
    const validator = ajv.getSchema(`${DOC_ID}${pointer}`);
    if (!validator) throw new Error(`no schema at ${pointer}`);
    if (!validator(value)) {
      throw new Error(
        `${what} does not match ${pointer}: ${ajv.errorsText(validator.errors)}\n${JSON.stringify(value)}`,
      );
    }
  };
  const statuses = new Map<string, Set<number>>();
  const codes = new Set<string>();

  return {
    statuses,
    codes,
    check(operation: string, res: Response): void {
      const [method, path] = operation.split(' ') as [string, string];
      const described = (doc.paths?.[path] as Json | undefined)?.[method.toLowerCase()] as
        { responses: Record<string, Json> } | undefined;
      if (!described) throw new Error(`${operation} is not described`);
      let pointer = `#/paths/${pointerSegment(path)}/${method.toLowerCase()}/responses/${res.status}`;
      let response = described.responses[String(res.status)];
      if (!response) {
        const listed = Object.keys(described.responses).join(', ');
        throw new Error(
          `${operation} answered ${res.status}, which it does not describe (${listed}): ${res.text}`,
        );
      }
      if (typeof response.$ref === 'string') {
        pointer = response.$ref;
        response = resolvePointer(doc, pointer);
      }
      const what = `${operation} -> ${res.status}`;

      if ((response.content as Json | undefined)?.['application/json']) {
        if (!/^application\/json\b/.test(String(res.headers['content-type']))) {
          throw new Error(`${what} is described as JSON but came as ${res.headers['content-type']}`);
        }
        validate(`${pointer}/content/application~1json/schema`, res.body, `${what} body`);
      } else if (res.text) {
        throw new Error(`${what} is described without a body but came with one: ${res.text}`);
      }

      for (const [name, declared] of Object.entries((response.headers ?? {}) as Record<string, Json>)) {
        const headerPointer =
          typeof declared.$ref === 'string' ? declared.$ref : `${pointer}/headers/${pointerSegment(name)}`;
        const header = resolvePointer(doc, headerPointer);
        const value = res.headers[name.toLowerCase()] as string | string[] | undefined;
        if (value === undefined) {
          if (header.required) throw new Error(`${what} lacks its required header ${name}`);
          continue;
        }
        const integer = (header.schema as Json | undefined)?.type === 'integer';
        for (const v of Array.isArray(value) ? value : [value]) {
          validate(
            `${headerPointer}/schema`,
            integer && /^-?\d+$/.test(v) ? Number(v) : v,
            `${what} header ${name}`,
          );
        }
      }

      statuses.set(operation, (statuses.get(operation) ?? new Set()).add(res.status));
      const code = (res.body as { error?: { code?: unknown } } | undefined)?.error?.code;
      if (typeof code === 'string') codes.add(code);
    },
  };
}
