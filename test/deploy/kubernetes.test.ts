import { spawnSync } from 'node:child_process';
import { appendFileSync, cpSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { durationMs, loadCompose, requireService } from '../support/compose';
import { execForm, parseDockerfile } from '../support/dockerfile';
import {
  copyWithStandInSecrets,
  KUSTOMIZE,
  kustomizeBuild,
  schemaErrors,
  unknownFieldErrors,
  type KubeObject,
} from '../support/kubernetes';
import { ROOT } from '../support/run-script';
import { describeWithTool } from '../support/tools';

/**
 * deploy/kubernetes rendered by kustomize (the base, the production overlay, and the overlay with the
 * SMTP egress component), every object checked against the Kubernetes API schemas, then held to what
 * the manifests' comments and docs/scale.md promise: the pod hardening, probes and shutdown timing of
 * the app, its environment and secrets as docker-compose.yml gives them, and who may talk to whom.
 * Nothing here runs a cluster: what a cluster would add (admission, a network plugin enforcing the
 * policies) is in docs/scale.md, "What was proven here".
 */

const compose = loadCompose({});
const composeApp = requireService(compose, 'app');
const runtime = parseDockerfile(readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8')).stages.find(
  (s) => s.name === 'runtime',
)!;
const dockerfile = (keyword: string) =>
  runtime.instructions.filter((i) => i.keyword === keyword).map((i) => i.args);

/* eslint-disable @typescript-eslint/no-explicit-any -- rendered objects are read field by field */
type Pod = any;

const find = (objects: KubeObject[], kind: string, name: string): any => {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (!found) throw new Error(`no ${kind} ${name} in the render`);
  return found;
};
const byKind = (objects: KubeObject[], kind: string): any[] => objects.filter((o) => o.kind === kind);
/** The objects an overlay adds under a generated name (name-hash): the ConfigMap, the Secret. */
const generated = (objects: KubeObject[], kind: string, prefix: string): any => {
  const found = objects.filter((o) => o.kind === kind && o.metadata.name.startsWith(`${prefix}-`));
  expect(found).toHaveLength(1);
  return found[0];
};
const podOf = (workload: any): Pod => workload.spec.template;
const matches = (selector: Record<string, string>, labels: Record<string, string>) =>
  Object.entries(selector).every(([key, value]) => labels[key] === value);
/** The workloads (Deployment, Job) whose pods a label selector picks, as `Kind name`. */
const selected = (objects: KubeObject[], selector: Record<string, string>): string[] =>
  objects
    .filter((o) => o.kind === 'Deployment' || o.kind === 'Job')
    .filter((o) => matches(selector, podOf(o).metadata.labels))
    .map((o) => `${o.kind} ${o.metadata.name}`);

const SECRET_NAMES = [
  'DATABASE_URL',
  'REDIS_URL',
  'SESSION_SECRET',
  'SMTP_URL',
  'MFA_ENCRYPTION_KEYS',
  'ADMIN_PASSWORD',
];

describeWithTool(
  KUSTOMIZE?.[0] ?? 'kustomize',
  'Debian trixie`s kustomize package, which .ci/run installs into ~/.cache, or kubectl 1.27+',
  'the Kubernetes manifests',
  () => {
    let base: KubeObject[];
    let production: KubeObject[];
    let withMail: KubeObject[];
    let withMetrics: KubeObject[];

    beforeAll(() => {
      const dir = copyWithStandInSecrets();
      // An overlay as deploy/kubernetes/README.md tells an operator to write one: the production overlay
      // with its `components:` list filled in, so the component's objects get the overlay's namespace.
      const withComponents = (name: string, component: string) => {
        const overlay = path.join(dir, 'overlays', name);
        cpSync(path.join(dir, 'overlays', 'production'), overlay, { recursive: true });
        appendFileSync(
          path.join(overlay, 'kustomization.yaml'),
          `\ncomponents:\n  - ../../components/${component}\n`,
        );
        return kustomizeBuild(overlay);
      };
      base = kustomizeBuild(path.join(dir, 'base'));
      production = kustomizeBuild(path.join(dir, 'overlays', 'production'));
      withMail = withComponents('with-mail', 'smtp-egress');
      withMetrics = withComponents('with-metrics', 'metrics');
      rmSync(path.dirname(dir), { recursive: true, force: true });
    });

    describe('the API schemas', () => {
      test('when every rendered object is validated against its schema, then none is refused', () => {
        expect(schemaErrors([...base, ...production, ...withMail, ...withMetrics])).toEqual([]);
      });

      test('when every rendered object is read as its API type, then no field is unknown to the API', () => {
        expect(
          unknownFieldErrors([
            ...production,
            ...withMail.filter((o) => o.kind === 'NetworkPolicy'),
            ...withMetrics.filter((o) => ['NetworkPolicy', 'PodMonitor', 'Deployment'].includes(o.kind)),
          ]),
        ).toEqual([]);
        expect(unknownFieldErrors(base)).toEqual([]);
      });

      test('when an object is broken on purpose, then both checks say so (they really run)', () => {
        const broken = structuredClone(find(production, 'Deployment', 'app'));
        broken.spec.template.spec.containers[0].ports[0].containerPort = 'three thousand';
        broken.spec.template.spec.containers[0].securityContext.readOnlyRootFileSystem = true;
        expect(schemaErrors([broken])).toEqual([expect.stringMatching(/containerPort must be integer/)]);
        expect(unknownFieldErrors([broken])).toEqual(
          expect.arrayContaining([expect.stringMatching(/readOnlyRootFileSystem/)]),
        );
        expect(schemaErrors([{ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'x' } }])).toEqual([
          expect.stringMatching(/no schema/),
        ]);
      });

      test('when the production overlay is rendered, then it holds exactly the expected objects, all in its namespace', () => {
        const refs = production.map(
          (o) => `${o.kind} ${o.metadata.name.replace(/-[a-z0-9]{10}$/, '-<hash>')}`,
        );
        expect(refs.sort()).toEqual(
          [
            'ConfigMap app-config-<hash>',
            'Deployment app',
            'HorizontalPodAutoscaler app',
            'Ingress app',
            'Issuer letsencrypt',
            'Job migrate',
            'Namespace express-hardened-starter',
            'NetworkPolicy acme-http01-solver',
            'NetworkPolicy app',
            'NetworkPolicy default-deny',
            'NetworkPolicy migrate',
            'PodDisruptionBudget app',
            'Secret app-secrets-<hash>',
            'Service app',
            'ServiceAccount app',
          ].sort(),
        );
        for (const object of production.filter((o) => o.kind !== 'Namespace'))
          expect(object.metadata.namespace).toBe('express-hardened-starter');
      });

      test('when the namespace is read, then Pod Security Admission enforces the restricted profile in it', () => {
        // The API server then refuses any pod that breaks the settings the next tests check, whatever
        // a later edit of the manifests says.
        expect(find(production, 'Namespace', 'express-hardened-starter').metadata.labels).toMatchObject({
          'pod-security.kubernetes.io/enforce': 'restricted',
          'pod-security.kubernetes.io/enforce-version': 'latest',
        });
      });
    });

    describe('the pods (app and migration)', () => {
      const workloads = () => [find(production, 'Deployment', 'app'), find(production, 'Job', 'migrate')];

      test('when the pod security settings are read, then they run as the image`s non-root user with RuntimeDefault seccomp and no API token', () => {
        // The Dockerfile's runtime stage runs as the official Node image's `node` user: uid and gid 1000.
        expect(dockerfile('USER')).toEqual(['node']);
        for (const workload of workloads()) {
          const pod = podOf(workload).spec;
          expect(pod.securityContext).toEqual({
            runAsNonRoot: true,
            runAsUser: 1000,
            runAsGroup: 1000,
            fsGroup: 1000,
            seccompProfile: { type: 'RuntimeDefault' },
          });
          expect(pod.automountServiceAccountToken).toBe(false);
          expect(pod.enableServiceLinks).toBe(false);
          expect(pod.hostNetwork ?? false).toBe(false);
          expect(pod.hostPID ?? false).toBe(false);
          expect(
            find(production, 'ServiceAccount', pod.serviceAccountName).automountServiceAccountToken,
          ).toBe(false);
        }
      });

      test('when each container is read, then its root file system is read-only, every capability dropped, no privilege gained, and resources bounded', () => {
        for (const workload of workloads()) {
          for (const container of podOf(workload).spec.containers) {
            expect(container.securityContext).toEqual({
              allowPrivilegeEscalation: false,
              privileged: false,
              readOnlyRootFilesystem: true,
              runAsNonRoot: true,
              capabilities: { drop: ['ALL'] },
            });
            for (const kind of ['requests', 'limits'])
              expect(Object.keys(container.resources[kind]).sort()).toEqual(['cpu', 'memory']);
          }
        }
      });

      test('when the volumes are read, then the only writable path is a bounded in-memory /tmp, and the secrets are mounted read-only for the app`s group', () => {
        for (const workload of workloads()) {
          const pod = podOf(workload).spec;
          const [container] = pod.containers;
          expect(container.volumeMounts).toEqual([
            { name: 'secrets', mountPath: '/run/secrets/app', readOnly: true },
            { name: 'tmp', mountPath: '/tmp' },
          ]);
          const secret = generated(production, 'Secret', 'app-secrets');
          expect(pod.volumes).toEqual([
            { name: 'secrets', secret: { secretName: secret.metadata.name, defaultMode: 0o440 } },
            { name: 'tmp', emptyDir: { medium: 'Memory', sizeLimit: '16Mi' } },
          ]);
        }
      });

      test('when the app`s memory limit is read, then it is compose`s mem_limit, under which the bench measured the app', () => {
        const app = podOf(find(production, 'Deployment', 'app')).spec.containers[0];
        expect(composeApp.mem_limit).toBe('512m');
        expect(app.resources.limits.memory).toBe('512Mi');
      });

      test('when the images are read, then the app and the migration run the overlay`s image of this repository', () => {
        for (const workload of workloads())
          expect(podOf(workload).spec.containers[0].image).toBe(
            'registry.example.com/express-hardened-starter:0.1.0',
          );
        for (const workload of [find(base, 'Deployment', 'app'), find(base, 'Job', 'migrate')])
          expect(podOf(workload).spec.containers[0].image).toBe('express-hardened-starter');
      });
    });

    describe('the app`s environment and secrets', () => {
      const config = () => generated(production, 'ConfigMap', 'app-config').data as Record<string, string>;

      test('when the environment is compared with compose`s, then it is the same but for the host name, HSTS from the app and the compose stack`s own data-store certificates', () => {
        const { PUBLIC_URL: composeUrl, ...composeEnv } = composeApp.environment!;
        // The compose stack's private CA for its own Postgres and Redis (ADR 0035); a cluster's stores
        // are external, with the provider's CA and accounts (docs/deploy.md).
        const composeRest = Object.fromEntries(
          Object.entries(composeEnv).filter(
            ([key]) => !/^(DATABASE|REDIS)_(CA|CLIENT_CERT|CLIENT_KEY)_FILE$/.test(key),
          ),
        );
        expect(Object.keys(composeEnv).length - Object.keys(composeRest).length).toBe(6);
        const { PUBLIC_URL: url, HSTS_ENABLED: hsts, ...rest } = config();
        expect(rest).toEqual(composeRest);
        expect(composeUrl).toBe('https://localhost');
        expect(url).toMatch(/^https:\/\//);
        // No nginx of this repository in front: the app sends HSTS itself.
        expect(hsts).toBe('true');
        expect(rest).toMatchObject({ NODE_ENV: 'production', TRUST_PROXY: '1', PORT: '3000' });
      });

      test('when the containers` environment is read, then it comes from the ConfigMap alone: no value, and no secret, in the pod spec', () => {
        const configMap = generated(production, 'ConfigMap', 'app-config');
        for (const workload of [find(production, 'Deployment', 'app'), find(production, 'Job', 'migrate')]) {
          const [container] = podOf(workload).spec.containers;
          expect(container.env).toBeUndefined();
          expect(container.envFrom).toEqual([{ configMapRef: { name: configMap.metadata.name } }]);
        }
        for (const name of SECRET_NAMES) expect(config()[name]).toBeUndefined();
      });

      test('when the secret files are read, then each *_FILE names a key of the mounted Secret, and the Secret holds nothing else', () => {
        const files = Object.entries(config())
          .filter(([key]) => key.endsWith('_FILE'))
          .map(([, value]) => value);
        expect(files.every((file) => path.dirname(file) === '/run/secrets/app')).toBe(true);
        const secret = generated(production, 'Secret', 'app-secrets');
        expect(Object.keys(secret.data).sort()).toEqual(files.map((file) => path.basename(file)).sort());
        // An empty smtp_url turns mail off, as compose's secrets-init copy does.
        expect(secret.data.smtp_url).toBe('');
      });

      test('when git looks at the overlay`s secrets folder, then it ignores the secret files and keeps only its README', () => {
        const secrets = path.join('deploy', 'kubernetes', 'overlays', 'production', 'secrets');
        const ignored = (file: string) =>
          spawnSync('git', ['check-ignore', '-q', '--no-index', path.join(secrets, file)], { cwd: ROOT })
            .status === 0;
        for (const file of [
          'database_url',
          'redis_url',
          'session_secret',
          'smtp_url',
          'mfa_encryption_keys',
          'anything',
        ])
          expect(ignored(file)).toBe(true);
        expect(ignored('README.md')).toBe(false);
      });
    });

    describe('health and shutdown', () => {
      const app = () => podOf(find(production, 'Deployment', 'app'));
      const container = () => app().spec.containers[0];

      test('when the probes are read, then readiness asks /readyz and liveness /healthz, on the port the image listens on', () => {
        const port = container().ports.find((p: any) => p.name === 'http');
        expect(port.containerPort).toBe(3000);
        expect(dockerfile('EXPOSE')).toEqual(['3000']);
        expect(generated(production, 'ConfigMap', 'app-config').data.PORT).toBe('3000');
        expect(container().readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'http' });
        expect(container().livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'http' });
        expect(container().startupProbe.httpGet).toEqual({ path: '/healthz', port: 'http' });
      });

      test('when the shutdown timing is read, then the grace period covers the preStop pause plus the time compose gives the same shutdown', () => {
        const pause = container().lifecycle.preStop.sleep.seconds as number;
        const grace = app().spec.terminationGracePeriodSeconds as number;
        const shutdownMs = Number(generated(production, 'ConfigMap', 'app-config').data.SHUTDOWN_TIMEOUT_MS);
        expect(shutdownMs).toBe(Number(composeApp.environment!.SHUTDOWN_TIMEOUT_MS));
        expect(pause).toBeGreaterThanOrEqual(3);
        // compose's stop_grace_period is itself longer than SHUTDOWN_TIMEOUT_MS (compose-hardening.test.ts).
        expect((grace - pause) * 1000).toBeGreaterThanOrEqual(durationMs(composeApp.stop_grace_period!));
        expect((grace - pause) * 1000).toBeGreaterThan(shutdownMs);
      });

      test('when the command is read, then the pod runs the image`s own CMD (node receives SIGTERM itself)', () => {
        expect(container().command).toBeUndefined();
        expect(container().args).toBeUndefined();
        expect(execForm(dockerfile('CMD')[0]!)![0]).toBe('node');
      });
    });

    describe('scaling and disruption', () => {
      test('when the autoscaler is read, then it scales the app`s Deployment on CPU, never below 2, and the Deployment leaves replicas to it', () => {
        const hpa = find(production, 'HorizontalPodAutoscaler', 'app');
        expect(hpa.spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'app' });
        expect(hpa.spec.minReplicas).toBeGreaterThanOrEqual(2);
        expect(hpa.spec.maxReplicas).toBeGreaterThan(hpa.spec.minReplicas);
        expect(hpa.spec.metrics).toEqual([
          {
            type: 'Resource',
            resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } },
          },
        ]);
        expect(find(production, 'Deployment', 'app').spec.replicas).toBeUndefined();
      });

      test('when the disruption budget is read, then it keeps at least one app pod and lets a drain evict one at a time', () => {
        const pdb = find(production, 'PodDisruptionBudget', 'app');
        const hpa = find(production, 'HorizontalPodAutoscaler', 'app');
        expect(pdb.spec.minAvailable).toBe(1);
        expect(pdb.spec.minAvailable).toBeLessThan(hpa.spec.minReplicas);
        expect(selected(production, pdb.spec.selector.matchLabels)).toEqual(['Deployment app']);
      });

      test('when the rollout strategy is read, then a new pod is ready before an old one goes', () => {
        expect(find(production, 'Deployment', 'app').spec.strategy.rollingUpdate).toEqual({
          maxUnavailable: 0,
          maxSurge: 1,
        });
      });
    });

    describe('the migration Job', () => {
      test('when it is read, then it runs the migration compose`s migrate service runs, once, with a deadline', () => {
        const job = find(production, 'Job', 'migrate');
        const [container] = podOf(job).spec.containers;
        expect(container.command).toEqual(['node', 'dist/scripts/migrate.js']);
        expect(String(requireService(compose, 'migrate').command)).toContain('node dist/scripts/migrate.js');
        expect(podOf(job).spec.restartPolicy).toBe('Never');
        expect(job.spec.backoffLimit).toBeLessThanOrEqual(3);
        expect(job.spec.activeDeadlineSeconds).toBeGreaterThan(0);
      });
    });

    describe('the way in: Service, Ingress, certificate', () => {
      test('when the Service is read, then it is internal and selects the app`s pods only', () => {
        const service = find(production, 'Service', 'app');
        expect(service.spec.type).toBe('ClusterIP');
        expect(service.spec.ports).toEqual([{ name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' }]);
        expect(selected(production, service.spec.selector)).toEqual(['Deployment app']);
      });

      test('when the Ingress is read, then it serves PUBLIC_URL`s host over TLS with a certificate from the Let`s Encrypt issuer', () => {
        const ingress = find(production, 'Ingress', 'app');
        const host = new URL(generated(production, 'ConfigMap', 'app-config').data.PUBLIC_URL).host;
        expect(ingress.spec.tls).toEqual([{ hosts: [host], secretName: 'app-tls' }]);
        expect(ingress.spec.rules.map((r: any) => r.host)).toEqual([host]);
        expect(ingress.spec.rules[0].http.paths).toEqual([
          { path: '/', pathType: 'Prefix', backend: { service: { name: 'app', port: { name: 'http' } } } },
        ]);
        const issuerName = ingress.metadata.annotations['cert-manager.io/issuer'];
        const issuer = find(production, 'Issuer', issuerName);
        expect(issuer.spec.acme.server).toBe('https://acme-v02.api.letsencrypt.org/directory');
        expect(issuer.spec.acme.solvers).toEqual([
          { http01: { ingress: { ingressClassName: ingress.spec.ingressClassName } } },
        ]);
        expect(ingress.metadata.annotations['nginx.ingress.kubernetes.io/force-ssl-redirect']).toBe('true');
        // ASVS 5.0 11.2.3: a P-256 key (128 bits of security), not cert-manager's default RSA 2048 (112).
        expect(ingress.metadata.annotations).toMatchObject({
          'cert-manager.io/private-key-algorithm': 'ECDSA',
          'cert-manager.io/private-key-size': '256',
        });
        // The body limit nginx/ applies at the compose edge, applied by the ingress controller here.
        const edge = readFileSync(path.join(ROOT, 'nginx', 'templates', 'default.conf.template'), 'utf8');
        const limit = /client_max_body_size (\S+);/.exec(edge)![1];
        expect(ingress.metadata.annotations['nginx.ingress.kubernetes.io/proxy-body-size']).toBe(limit);
        // Never a second pod for one request: ingress-nginx's default would resend a PUT or DELETE.
        expect(ingress.metadata.annotations['nginx.ingress.kubernetes.io/proxy-next-upstream']).toBe('off');
      });
    });

    // ASVS 5.0 13.1.1, 13.2.4, 13.2.5: every peer of every pod is listed.
    describe('the network policies', () => {
      const policy = (objects: KubeObject[], name: string) => find(objects, 'NetworkPolicy', name).spec;
      const dns = {
        to: [
          {
            namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } },
            podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } },
          },
        ],
        ports: [
          { port: 53, protocol: 'UDP' },
          { port: 53, protocol: 'TCP' },
        ],
      };
      const to = (cidr: string, port: number) => ({
        to: [{ ipBlock: { cidr } }],
        ports: [{ port, protocol: 'TCP' }],
      });

      test('when the default policy is read, then every pod of the namespace is closed both ways', () => {
        expect(policy(production, 'default-deny')).toEqual({
          podSelector: {},
          policyTypes: ['Ingress', 'Egress'],
        });
      });

      test('when the app`s policy is read, then only the ingress controller`s pods reach it, and it reaches only DNS, Postgres and Redis', () => {
        const app = policy(production, 'app');
        expect(selected(production, app.podSelector.matchLabels)).toEqual(['Deployment app']);
        expect(app.policyTypes).toEqual(['Ingress', 'Egress']);
        // One peer with both selectors: pods labelled ingress-nginx AND in the ingress-nginx namespace.
        expect(app.ingress).toEqual([
          {
            from: [
              {
                namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'ingress-nginx' } },
                podSelector: { matchLabels: { 'app.kubernetes.io/name': 'ingress-nginx' } },
              },
            ],
            ports: [{ port: 'http', protocol: 'TCP' }],
          },
        ]);
        expect(app.egress).toEqual([dns, to('10.20.0.0/24', 5432), to('10.30.0.0/24', 6379)]);
        // The base's placeholders (a documentation range, routed nowhere) are replaced by the overlay.
        expect(policy(base, 'app').egress).toEqual([
          dns,
          to('192.0.2.10/32', 5432),
          to('192.0.2.20/32', 6379),
        ]);
      });

      test('when the migration`s policy is read, then nothing reaches it and it reaches only DNS and Postgres', () => {
        const migrate = policy(production, 'migrate');
        expect(selected(production, migrate.podSelector.matchLabels)).toEqual(['Job migrate']);
        expect(migrate.policyTypes).toEqual(['Ingress', 'Egress']);
        expect(migrate.ingress).toBeUndefined();
        expect(migrate.egress).toEqual([dns, to('10.20.0.0/24', 5432)]);
      });

      test('when the ACME solver`s policy is read, then the ingress controller alone reaches cert-manager`s HTTP-01 solver pods, on their port', () => {
        const solver = policy(production, 'acme-http01-solver');
        expect(solver.podSelector).toEqual({ matchLabels: { 'acme.cert-manager.io/http01-solver': 'true' } });
        expect(solver.policyTypes).toEqual(['Ingress']);
        expect(solver.ingress).toEqual([
          { from: policy(production, 'app').ingress[0].from, ports: [{ port: 8089, protocol: 'TCP' }] },
        ]);
        expect(selected(production, solver.podSelector.matchLabels)).toEqual([]);
      });

      test('when no component is added, then no policy opens an SMTP port; with smtp-egress, the app alone reaches public addresses on 587 and 465', () => {
        const smtpPorts = (objects: KubeObject[]) =>
          byKind(objects, 'NetworkPolicy').flatMap((p) =>
            (p.spec.egress ?? []).flatMap((rule: any) => (rule.ports ?? []).map((port: any) => port.port)),
          );
        expect(smtpPorts(production).filter((port) => [25, 465, 587].includes(port))).toEqual([]);
        const smtp = policy(withMail, 'app-smtp-egress');
        expect(selected(withMail, smtp.podSelector.matchLabels)).toEqual(['Deployment app']);
        expect(smtp.policyTypes).toEqual(['Egress']);
        expect(smtp.egress).toEqual([
          {
            to: [
              {
                ipBlock: {
                  cidr: '0.0.0.0/0',
                  except: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '169.254.0.0/16'],
                },
              },
            ],
            ports: [
              { port: 587, protocol: 'TCP' },
              { port: 465, protocol: 'TCP' },
            ],
          },
        ]);
      });

      test('when the metrics component is added, then the app serves metrics on a named port that only Prometheus`s pods reach, never through the Service', () => {
        const config = generated(withMetrics, 'ConfigMap', 'app-config').data;
        expect(config).toMatchObject({ METRICS_PORT: '9464', METRICS_HOST: '0.0.0.0' });
        expect(generated(production, 'ConfigMap', 'app-config').data.METRICS_PORT).toBeUndefined();
        const container = podOf(find(withMetrics, 'Deployment', 'app')).spec.containers[0];
        expect(container.ports).toHaveLength(2);
        expect(container.ports).toEqual(
          expect.arrayContaining([
            { name: 'http', containerPort: 3000, protocol: 'TCP' },
            { name: 'metrics', containerPort: Number(config.METRICS_PORT), protocol: 'TCP' },
          ]),
        );
        // Through the Service and the Ingress only the app's own port: metrics never leave the cluster.
        expect(find(withMetrics, 'Service', 'app').spec.ports.map((p: any) => p.targetPort)).toEqual([
          'http',
        ]);
        const metrics = policy(withMetrics, 'app-metrics');
        expect(selected(withMetrics, metrics.podSelector.matchLabels)).toEqual(['Deployment app']);
        expect(metrics.policyTypes).toEqual(['Ingress']);
        expect(metrics.ingress).toEqual([
          {
            from: [
              {
                namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } },
                podSelector: { matchLabels: { 'app.kubernetes.io/name': 'prometheus' } },
              },
            ],
            ports: [{ port: 'metrics', protocol: 'TCP' }],
          },
        ]);
        // The ingress controller still reaches the app's port alone, not the metrics one.
        expect(policy(withMetrics, 'app').ingress[0].ports).toEqual([{ port: 'http', protocol: 'TCP' }]);
        const monitor = find(withMetrics, 'PodMonitor', 'app');
        expect(monitor.metadata.namespace).toBe('express-hardened-starter');
        expect(selected(withMetrics, monitor.spec.selector.matchLabels)).toEqual(['Deployment app']);
        expect(monitor.spec.podMetricsEndpoints).toEqual([
          expect.objectContaining({ port: 'metrics', path: '/metrics' }),
        ]);
        for (const object of [...withMail, ...withMetrics].filter((o) => o.kind !== 'Namespace'))
          expect(object.metadata.namespace).toBe('express-hardened-starter');
      });

      test('when every egress rule is read, then each names both its destinations and its ports (an empty list would mean any)', () => {
        for (const p of byKind(withMail, 'NetworkPolicy'))
          for (const rule of p.spec.egress ?? []) {
            expect(rule.to?.length).toBeGreaterThan(0);
            expect(rule.ports?.length).toBeGreaterThan(0);
          }
      });
    });
  },
);
