/**
 * Validates Kubernetes objects against the API's schemas with kubernetes-models (and its cert-manager,
 * Prometheus Operator and External Secrets Operator models), one `.validate()` per object. Run as a separate process (`tsx`, ES module) because those
 * packages are ES modules only, which jest's CommonJS runtime cannot load. Reads a JSON array of
 * objects on stdin; writes, as JSON, one entry per object: its kind and name, and the schema's
 * complaint or null. A kind without a model is a complaint too: nothing goes unchecked.
 */
import { readFileSync } from 'node:fs';
import { Namespace, ServiceAccount, ConfigMap, Secret, Service } from 'kubernetes-models/v1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { Job } from 'kubernetes-models/batch/v1';
import { Ingress, NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { Issuer } from '@kubernetes-models/cert-manager/cert-manager.io/v1';
import { PodMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import { ExternalSecret } from '@kubernetes-models/external-secrets/external-secrets.io/v1';

interface Model {
  validate(): void;
}
type ModelClass = (new (data: never) => Model) & { apiVersion: string; kind: string };

const MODELS: ModelClass[] = [
  Namespace,
  ServiceAccount,
  ConfigMap,
  Secret,
  Service,
  Deployment,
  Job,
  Ingress,
  NetworkPolicy,
  PodDisruptionBudget,
  HorizontalPodAutoscaler,
  Issuer,
  PodMonitor,
  ExternalSecret,
];

interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata?: { name?: string };
}

const objects = JSON.parse(readFileSync(0, 'utf8')) as KubeObject[];
const results = objects.map((object) => {
  const ref = `${object.apiVersion} ${object.kind} ${object.metadata?.name ?? '(no name)'}`;
  const model = MODELS.find((m) => m.apiVersion === object.apiVersion && m.kind === object.kind);
  if (!model) return { ref, error: 'no schema for this apiVersion and kind' };
  try {
    new model(object as never).validate();
    return { ref, error: null };
  } catch (error) {
    return { ref, error: (error as Error).message };
  }
});
process.stdout.write(JSON.stringify(results));
