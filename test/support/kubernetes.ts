import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ts from 'typescript';
import { parseAllDocuments } from 'yaml';
import { ROOT } from './run-script';
import { hasTool } from './tools';

/** The parts of a rendered object every test reads; the rest is looked at through casts. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  [field: string]: unknown;
}

export const KUBERNETES_DIR = path.join(ROOT, 'deploy', 'kubernetes');

/**
 * A copy of deploy/kubernetes in a temporary folder, with stand-in secret files where the production
 * overlay expects the operator's (they are git-ignored, so a clone has none), and `extra` files
 * (relative path -> content) added, such as an overlay that uses a component.
 */
export function copyWithStandInSecrets(extra: Record<string, string> = {}): string {
  const dir = path.join(mkdtempSync(path.join(os.tmpdir(), 'kubernetes-')), 'kubernetes');
  cpSync(KUBERNETES_DIR, dir, { recursive: true });
  const secrets = path.join(dir, 'overlays', 'production', 'secrets');
  writeFileSync(path.join(secrets, 'database_url'), 'postgres://app:stand-in@postgres.example:5432/app\n');
  writeFileSync(path.join(secrets, 'redis_url'), 'rediss://default:stand-in@redis.example:6379\n');
  writeFileSync(path.join(secrets, 'session_secret'), 'stand-in-session-secret-of-at-least-32-chars\n');
  writeFileSync(path.join(secrets, 'smtp_url'), '');
  // A short id: kustomize wraps a Secret's base64 past 70 characters, which the API server reads
  // (Go's decoder skips newlines) but the schema check's `byte` format refuses.
  const standInKey = Buffer.from(Array.from({ length: 32 }, (_, i) => i)).toString('base64');
  writeFileSync(path.join(secrets, 'mfa_encryption_keys'), `k1:${standInKey}\n`);
  for (const [file, content] of Object.entries(extra)) {
    mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    writeFileSync(path.join(dir, file), content);
  }
  return dir;
}

/**
 * How to run kustomize here: `kustomize build`, or else kubectl's embedded copy when it is kustomize 5
 * or later (GitHub's runners have kubectl; bookworm's kubectl 1.20 embeds 2.0, which cannot read these
 * manifests). Undefined when neither is there.
 */
export const KUSTOMIZE: string[] | undefined = (() => {
  if (hasTool('kustomize')) return ['kustomize', 'build'];
  if (!hasTool('kubectl')) return undefined;
  const version = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' }).stdout ?? '';
  const major = Number(/Kustomize Version: v(\d+)/.exec(version)?.[1] ?? 0);
  return major >= 5 ? ['kubectl', 'kustomize'] : undefined;
})();

/** The kustomization in DIR rendered, parsed: every object. Throws with kustomize's message if it fails. */
export function kustomizeBuild(dir: string): KubeObject[] {
  if (!KUSTOMIZE) throw new Error('no kustomize (nor kubectl with kustomize 5) on PATH');
  const [command, ...args] = KUSTOMIZE;
  const result = spawnSync(command!, [...args, dir], { encoding: 'utf8', timeout: 30_000 });
  if (result.status !== 0) throw new Error(`kustomize build ${dir} failed: ${result.stderr || result.error}`);
  return parseAllDocuments(result.stdout).map((doc) => doc.toJS() as KubeObject);
}

/**
 * Each object checked by its API schema (kubernetes-models' `.validate()`, in a child process: the
 * package is ES modules only). Returns one line per object the schema refuses, or whose kind has no
 * schema here.
 */
export function schemaErrors(objects: unknown[]): string[] {
  const result = spawnSync(
    path.join(ROOT, 'node_modules', '.bin', 'tsx'),
    [path.join(ROOT, 'test', 'support', 'kubernetes-schemas.mts')],
    { input: JSON.stringify(objects), encoding: 'utf8', timeout: 60_000 },
  );
  if (result.status !== 0) throw new Error(`schema validation did not run: ${result.stderr || result.error}`);
  const results = JSON.parse(result.stdout) as { ref: string; error: string | null }[];
  return results.flatMap(({ ref, error }) => (error === null ? [] : [`${ref}: ${error}`]));
}

/** Where each kind's TypeScript interface lives, for the unknown-field check below. */
const INTERFACES: Record<string, [module: string, name: string]> = {
  'v1 Namespace': ['kubernetes-models/v1/Namespace', 'INamespace'],
  'v1 ServiceAccount': ['kubernetes-models/v1/ServiceAccount', 'IServiceAccount'],
  'v1 ConfigMap': ['kubernetes-models/v1/ConfigMap', 'IConfigMap'],
  'v1 Secret': ['kubernetes-models/v1/Secret', 'ISecret'],
  'v1 Service': ['kubernetes-models/v1/Service', 'IService'],
  'apps/v1 Deployment': ['kubernetes-models/apps/v1/Deployment', 'IDeployment'],
  'batch/v1 Job': ['kubernetes-models/batch/v1/Job', 'IJob'],
  'networking.k8s.io/v1 Ingress': ['kubernetes-models/networking.k8s.io/v1/Ingress', 'IIngress'],
  'networking.k8s.io/v1 NetworkPolicy': [
    'kubernetes-models/networking.k8s.io/v1/NetworkPolicy',
    'INetworkPolicy',
  ],
  'policy/v1 PodDisruptionBudget': [
    'kubernetes-models/policy/v1/PodDisruptionBudget',
    'IPodDisruptionBudget',
  ],
  'autoscaling/v2 HorizontalPodAutoscaler': [
    'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler',
    'IHorizontalPodAutoscaler',
  ],
  'cert-manager.io/v1 Issuer': ['@kubernetes-models/cert-manager/cert-manager.io/v1/Issuer', 'IIssuer'],
  'monitoring.coreos.com/v1 PodMonitor': [
    '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor',
    'IPodMonitor',
  ],
  'external-secrets.io/v1 ExternalSecret': [
    '@kubernetes-models/external-secrets/external-secrets.io/v1/ExternalSecret',
    'IExternalSecret',
  ],
};

/**
 * Fields the API does not know. The schemas above accept them (they allow additional properties),
 * but the API server refuses them under strict field validation (kubectl's default), and a misspelt
 * security field (`readOnlyRootFileSystem`) would otherwise pass silently. The objects are written
 * as object literals typed by kubernetes-models' interfaces, and TypeScript's excess-property check
 * names every unknown field, at any depth. Returns TypeScript's messages; an unknown kind is one too.
 */
export function unknownFieldErrors(objects: KubeObject[]): string[] {
  const lines: string[] = [];
  const refs: string[] = [];
  const problems: string[] = [];
  objects.forEach((object, i) => {
    const found = INTERFACES[`${object.apiVersion} ${object.kind}`];
    if (!found) return problems.push(`${object.apiVersion} ${object.kind}: no interface to check it against`);
    const ref = `${object.kind} ${object.metadata.name}`;
    lines.push(`import type { ${found[1]} as T${i} } from '${found[0]}';`);
    lines.push(`export const o${i}: T${i} = ${JSON.stringify(object)};`);
    refs.push(ref, ref);
  });
  // An ES module beside the tests, so node_modules resolves as for any file of the project.
  const file = path.join(ROOT, 'test', 'support', '__rendered-kubernetes-objects__.mts');
  const source = lines.join('\n');
  const options: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, language, ...rest) =>
    name === file ? ts.createSourceFile(name, source, language) : getSourceFile(name, language, ...rest);
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => name === file || fileExists(name);
  const program = ts.createProgram([file], options, host);
  const sourceFile = program.getSourceFile(file)!;
  for (const diagnostic of ts.getPreEmitDiagnostics(program, sourceFile)) {
    const line = sourceFile.getLineAndCharacterOfPosition(diagnostic.start ?? 0).line;
    problems.push(`${refs[line]}: ${ts.flattenDiagnosticMessageText(diagnostic.messageText, ' ')}`);
  }
  return problems;
}
