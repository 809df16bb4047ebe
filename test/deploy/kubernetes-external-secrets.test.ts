import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseDocument } from 'yaml';
import {
  copyWithStandInSecrets,
  KUBERNETES_DIR,
  KUSTOMIZE,
  kustomizeBuild,
  schemaErrors,
  unknownFieldErrors,
  type KubeObject,
} from '../support/kubernetes';
import { describeWithTool } from '../support/tools';

/**
 * ASVS 5.0 13.3.1 on Kubernetes: deploy/kubernetes/components/external-secrets makes every Secret the
 * app's pods mount come from an external secrets manager through the External Secrets Operator, with
 * the names and keys the production overlay's generator gives them, so the workloads are unchanged
 * and no secret value is in the repository or on the machine that renders the manifests (ADR 0037).
 * Rendered as deploy/kubernetes/README.md tells an operator to: the production overlay without its
 * secretGenerator and with the component. No cluster runs here: that ESO then reads the store is its
 * own promise, checked against its API schema only.
 */

/* eslint-disable @typescript-eslint/no-explicit-any -- rendered objects are read field by field */

const NAMESPACE = 'express-hardened-starter';
const COMPONENT = '../../components/external-secrets';

/** A generated name without kustomize's content hash: `app-secrets-5f7h9k2m4t` -> `app-secrets`. */
const unhashed = (name: string) => name.replace(/-[a-z0-9]{10}$/, '');

/** Every Secret a Deployment's or Job's pods read, by name: volumes, projected volumes, env, envFrom. */
function consumedSecrets(objects: KubeObject[]): string[] {
  const names = new Set<string>();
  for (const workload of objects.filter((o) => o.kind === 'Deployment' || o.kind === 'Job')) {
    const pod = (workload as any).spec.template.spec;
    for (const volume of pod.volumes ?? []) {
      if (volume.secret) names.add(volume.secret.secretName);
      for (const source of volume.projected?.sources ?? []) if (source.secret) names.add(source.secret.name);
    }
    for (const container of [...(pod.initContainers ?? []), ...pod.containers]) {
      for (const from of container.envFrom ?? []) if (from.secretRef) names.add(from.secretRef.name);
      for (const env of container.env ?? [])
        if (env.valueFrom?.secretKeyRef) names.add(env.valueFrom.secretKeyRef.name);
    }
  }
  return [...names].sort();
}

/**
 * What keeps the store's render from replacing the overlay's Secrets one for one: each Secret the
 * overlay's pods consume (under its generated name) must be consumed under its plain name here,
 * written by exactly one ExternalSecret with the same keys, and never be a Secret object as well.
 * One line per problem; none means every secret comes from the store.
 */
function secretsNotFromTheStore(overlay: KubeObject[], withStore: KubeObject[]): string[] {
  const problems: string[] = [];
  const externalSecrets = withStore.filter((o) => o.kind === 'ExternalSecret') as any[];
  const expected = consumedSecrets(overlay);
  if (expected.length === 0) problems.push('the overlay`s pods consume no Secret: nothing to compare');
  const consumed = consumedSecrets(withStore);
  for (const name of expected) {
    const plain = unhashed(name);
    const keys = Object.keys(
      (overlay.find((o) => o.kind === 'Secret' && o.metadata.name === name) as any)?.data ?? {},
    );
    if (!consumed.includes(plain)) problems.push(`${plain}: the pods no longer mount it`);
    const writers = externalSecrets.filter((e) => (e.spec.target?.name ?? e.metadata.name) === plain);
    if (writers.length !== 1) {
      problems.push(`${plain}: written by ${writers.length} ExternalSecrets, not one`);
      continue;
    }
    const written = writers[0].spec.data.map((d: any) => d.secretKey).sort();
    if (JSON.stringify(written) !== JSON.stringify(keys.sort()))
      problems.push(`${plain}: the store writes [${written.join(', ')}], the overlay [${keys.join(', ')}]`);
    if (writers[0].spec.dataFrom !== undefined) problems.push(`${plain}: dataFrom would copy unlisted keys`);
  }
  for (const secret of withStore.filter((o) => o.kind === 'Secret'))
    problems.push(`${secret.metadata.name}: still a Secret in the render, beside the store`);
  return problems;
}

/** The production overlay's kustomization in DIR, edited as an operator would, under a new name. */
function overlayWith(dir: string, name: string, edit: (kustomization: any) => void): string {
  const overlay = path.join(dir, 'overlays', name);
  rmSync(overlay, { recursive: true, force: true });
  const production = path.join(dir, 'overlays', 'production');
  const kustomization = parseDocument(
    readFileSync(path.join(production, 'kustomization.yaml'), 'utf8'),
  ).toJS();
  edit(kustomization);
  // Beside production, so every relative path in it still resolves.
  cpSync(production, overlay, { recursive: true });
  writeFileSync(path.join(overlay, 'kustomization.yaml'), JSON.stringify(kustomization));
  return overlay;
}

/** The `patches:` example of deploy/kubernetes/README.md, "Secrets from a secret store", parsed. */
function readmePatches(): { target: unknown; patch: string }[] {
  const readme = readFileSync(path.join(KUBERNETES_DIR, 'README.md'), 'utf8');
  const block = /^( *)```yaml\n((?:\1.*\n)*?)\1```$/gm;
  for (const [, indent, body] of readme.matchAll(block)) {
    const yaml = body!.replace(new RegExp(`^${indent}`, 'gm'), '');
    if (yaml.includes('kind: ExternalSecret')) return parseDocument(yaml).toJS().patches;
  }
  throw new Error('no ExternalSecret patch in deploy/kubernetes/README.md');
}

const useTheStore = (kustomization: any) => {
  delete kustomization.secretGenerator;
  kustomization.components = [...(kustomization.components ?? []), COMPONENT];
};

/** A Go duration as ESO reads refreshInterval (h, m, s), in seconds. */
const seconds = (duration: string) => {
  const parts = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(duration);
  if (!parts || duration === '') throw new Error(`not a duration: ${duration}`);
  return Number(parts[1] ?? 0) * 3600 + Number(parts[2] ?? 0) * 60 + Number(parts[3] ?? 0);
};

describeWithTool(
  KUSTOMIZE?.[0] ?? 'kustomize',
  'Debian trixie`s kustomize package, which .ci/run installs into ~/.cache, or kubectl 1.27+',
  'ASVS 13.3.1: the app`s secrets from an external secret store (components/external-secrets)',
  () => {
    let production: KubeObject[];
    let withStore: KubeObject[];
    let storePatched: KubeObject[];
    let bothError: string;

    beforeAll(() => {
      const dir = copyWithStandInSecrets();
      production = kustomizeBuild(path.join(dir, 'overlays', 'production'));
      bothError = (() => {
        try {
          kustomizeBuild(overlayWith(dir, 'store-and-files', (k) => (k.components = [COMPONENT])));
          return '';
        } catch (error) {
          return (error as Error).message;
        }
      })();
      // No secret file at all: the store's overlay must not need one.
      for (const file of ['database_url', 'redis_url', 'session_secret', 'smtp_url', 'mfa_encryption_keys'])
        rmSync(path.join(dir, 'overlays', 'production', 'secrets', file));
      withStore = kustomizeBuild(overlayWith(dir, 'store', useTheStore));
      // The store's name and kind and the entry's path, changed by the patch deploy/kubernetes/README.md
      // shows, with its `replace` of data/0's key repeated for the four others as it says.
      storePatched = kustomizeBuild(
        overlayWith(dir, 'store-patched', (k) => {
          useTheStore(k);
          const readmePatch = readmePatches()[0]!;
          const keyOp = /- op: replace\n\s*path: \/spec\/data\/0\/remoteRef\/key\n.*$/m.exec(
            readmePatch.patch,
          )![0];
          const others = [1, 2, 3, 4].map((i) => keyOp.replace('/data/0/', `/data/${i}/`));
          k.patches = [
            ...(k.patches ?? []),
            { ...readmePatch, patch: [readmePatch.patch, ...others].join('\n') },
          ];
        }),
      );
      rmSync(path.dirname(dir), { recursive: true, force: true });
    });

    const externalSecret = (objects: KubeObject[]): any => {
      const found = objects.filter((o) => o.kind === 'ExternalSecret');
      expect(found).toHaveLength(1);
      return found[0];
    };

    test('when the overlay uses the store, then every Secret its pods mount is written by an ExternalSecret with the same name and keys, and none is generated', () => {
      expect(consumedSecrets(production).map(unhashed)).toEqual(['app-secrets']);
      expect(consumedSecrets(withStore)).toEqual(['app-secrets']);
      expect(secretsNotFromTheStore(production, withStore)).toEqual([]);
    });

    test('when an ExternalSecret misses a key, or a generated Secret stays, then the comparison says so (it really runs)', () => {
      const missing = withStore.map((o) => structuredClone(o)) as any[];
      externalSecret(missing).spec.data = externalSecret(missing).spec.data.filter(
        (d: any) => d.secretKey !== 'session_secret',
      );
      expect(secretsNotFromTheStore(production, missing)).toEqual([
        expect.stringMatching(
          /app-secrets: the store writes \[database_url, mfa_encryption_keys, redis_url, smtp_url\]/,
        ),
      ]);
      const renamed = withStore.map((o) => structuredClone(o)) as any[];
      externalSecret(renamed).spec.target.name = 'other';
      expect(secretsNotFromTheStore(production, renamed)).toEqual([
        'app-secrets: written by 0 ExternalSecrets, not one',
      ]);
      expect(secretsNotFromTheStore(production, production)).toEqual(
        expect.arrayContaining([expect.stringMatching(/still a Secret in the render/)]),
      );
    });

    test('when the overlay still generates app-secrets from files beside the component, then the build fails instead of mounting the files` copy', () => {
      expect(bothError).toMatch(/already registered id: Secret\.v1\.\[noGrp\]\/app-secrets/);
    });

    test('when the ExternalSecret is validated against the External Secrets Operator`s v1 API, then it is accepted, with no unknown field', () => {
      expect(schemaErrors([...withStore, ...storePatched])).toEqual([]);
      expect(
        unknownFieldErrors([...withStore, ...storePatched].filter((o) => o.kind === 'ExternalSecret')),
      ).toEqual([]);
      const broken = structuredClone(externalSecret(withStore));
      broken.spec.target.creationPolicy = 'Always';
      broken.spec.data[0].remoteRef.keyName = broken.spec.data[0].remoteRef.key;
      delete broken.spec.data[0].remoteRef.key;
      expect(schemaErrors([broken])).toEqual([expect.stringMatching(/ExternalSecret app-secrets: .+/)]);
      expect(unknownFieldErrors([broken])).toEqual(
        expect.arrayContaining([expect.stringMatching(/keyName/)]),
      );
    });

    test('when the lifecycle is read, then the store is read again periodically, and the Secret is owned by the ExternalSecret and destroyed with the store`s entry', () => {
      const { spec } = externalSecret(withStore);
      expect(spec.refreshPolicy).toBe('Periodic');
      // Within the hour ESO defaults to, never 0 (which would mean "read once").
      expect(seconds(spec.refreshInterval)).toBeGreaterThan(0);
      expect(seconds(spec.refreshInterval)).toBeLessThanOrEqual(3600);
      expect(spec.target).toMatchObject({ creationPolicy: 'Owner', deletionPolicy: 'Delete' });
      expect(spec.target.immutable ?? false).toBe(false);
    });

    test('when the render is read, then every object is in the overlay`s namespace and the store is the namespace`s own', () => {
      for (const object of withStore.filter((o) => o.kind !== 'Namespace'))
        expect(object.metadata.namespace).toBe(NAMESPACE);
      expect(externalSecret(withStore).spec.secretStoreRef).toEqual({
        kind: 'SecretStore',
        name: 'app-secret-store',
      });
      // The rest of the overlay is untouched: the same objects, less the generated Secret, plus one.
      const refs = (objects: KubeObject[]) =>
        objects
          .map((o) => `${o.kind} ${unhashed(o.metadata.name)}`)
          .filter((r) => r !== 'Secret app-secrets');
      expect(refs(withStore).sort()).toEqual([...refs(production), 'ExternalSecret app-secrets'].sort());
    });

    test('when the overlay patches the store and the entry`s path, then the ExternalSecret reads from them, keys unchanged', () => {
      const { spec } = externalSecret(storePatched);
      expect(spec.secretStoreRef).toEqual({ kind: 'ClusterSecretStore', name: 'vault' });
      expect(spec.data.map((d: any) => d.remoteRef.key)).toEqual(
        Array(5).fill('prod/express-hardened-starter'),
      );
      expect(spec.data.map((d: any) => d.remoteRef.property)).toEqual(spec.data.map((d: any) => d.secretKey));
      expect(secretsNotFromTheStore(production, storePatched)).toEqual([]);
    });
  },
);
