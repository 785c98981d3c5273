// cdk-nag's AwsSolutions pack: no unacknowledged finding, and every acknowledgement is needed
// and explained.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { type App, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { JobRunnerExampleStack } from '../lib/example-stack';
import { ENV, existingResources } from './fixtures';
import { INFRA_DIR, testApp } from './support';

/** Every finding the rules raise, acknowledgements ignored (NagPack.isAcknowledged is private). */
function allFindings(scope: IConstruct) {
  const pack = new AwsSolutionsChecks(scope);
  (pack as unknown as { isAcknowledged: () => boolean }).isAcknowledged = () => false;
  return pack.validateScope(scope).violations;
}

function exampleApp(env?: { account: string; region: string }): App {
  const app = testApp();
  new JobRunnerExampleStack(app, 'JobRunnerExample', { alertEmails: ['ops@example.com'], architecture: lambda.Architecture.ARM_64, env });
  return app;
}

function violations(scope: IConstruct): string[] {
  return new AwsSolutionsChecks(scope)
    .validateScope(scope)
    .violations.map((v) => `${v.ruleName} at ${v.violatingResources.map((r) => r.constructPath).join(', ')}`);
}

/** Every AwsSolutions acknowledgement in the tree: [construct path, rule id, reason]. */
function acknowledgements(scope: IConstruct): [string, string, string][] {
  const out: [string, string, string][] = [];
  for (const c of scope.node.findAll()) {
    for (const entry of c.node.metadata) {
      if (entry.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY) continue;
      for (const [id, reason] of Object.entries(entry.data as Record<string, string>)) {
        const rule = id.replace(/^(Annotation|AwsSolutions)::/i, '');
        if (rule.startsWith('AwsSolutions-')) out.push([c.node.path, rule, reason]);
      }
    }
  }
  return out;
}

describe('cdk-nag AwsSolutions', () => {
  test('the example app has no unacknowledged finding', () => {
    assert.deepEqual(violations(exampleApp()), []);
  });

  test('…also with an explicit account and region (ARNs with literal values)', () => {
    assert.deepEqual(violations(exampleApp(ENV)), []);
  });

  test('registered as a synth validation plugin, synth succeeds', () => {
    const app = exampleApp();
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    assert.doesNotThrow(() => app.synth());
  });

  test('the plugin does fail synth on an unacknowledged finding', () => {
    const app = testApp();
    const stack = new JobRunnerExampleStack(app, 'JobRunnerExample', { architecture: lambda.Architecture.ARM_64 });
    // An unencrypted, unlogged bucket: several AwsSolutions findings.
    new s3.Bucket(stack, 'Unchecked');
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    assert.throws(() => app.synth(), /Validation failed/);
  });

  test('the construct adds no unacknowledged finding to a stack of existing resources', () => {
    const { stack } = existingResources();
    const ours = violations(stack).filter((v) => / at Existing\/(JobRunner|BucketNotificationsHandler)/.test(v));
    assert.deepEqual(ours, []);
  });

  test('grantOperator acknowledges its wildcards (the tasks of the jobs\' clusters, the trigger buckets\' objects) on the grantee, and nothing stale', () => {
    const { stack } = existingResources(undefined, (jobRunner, s) =>
      jobRunner.grantOperator(new iam.Role(s, 'Operator', { assumedBy: new iam.AccountRootPrincipal() })),
    );
    assert.deepEqual(violations(stack).filter((v) => / at Existing\/Operator/.test(v)), []);
    const raw = allFindings(stack).filter((v) => v.violatingResources.some((r) => (r.constructPath ?? '').startsWith('Existing/Operator')));
    const expected = [
      'AwsSolutions-IAM5[Resource::arn:aws:ecs:eu-central-1:123456789012:task/batch/*]',
      'AwsSolutions-IAM5[Resource::arn:aws:ecs:eu-central-1:123456789012:task/jobs/*]',
      'AwsSolutions-IAM5[Resource::arn:aws:s3:::uploads/*]',
    ];
    assert.deepEqual([...new Set(raw.map((v) => v.ruleName))].sort(), expected, 'without acknowledgements: only the task and object wildcards');
    const acks = acknowledgements(stack).filter(([at]) => at === 'Existing/Operator');
    assert.deepEqual(acks.map(([, id]) => id).sort(), expected);
  });

  test('every acknowledgement matches a finding and states a reason', () => {
    const app = exampleApp();
    const raw = allFindings(app);
    const found = new Set(raw.flatMap((v) => v.violatingResources.map((r) => `${v.ruleName}@${r.constructPath}`)));
    const acks = acknowledgements(app);
    assert.ok(acks.length > 0);
    for (const [at, id, reason] of acks) {
      const rule = id;
      const matches = [...found].some((f) => f.startsWith(`${rule}@${at}/`) || f === `${rule}@${at}`);
      assert.ok(matches, `acknowledgement ${rule} at ${at} matches no finding (stale)`);
      assert.ok(reason.length >= 60, `acknowledgement ${rule} at ${at} needs a real reason: '${reason}'`);
    }
  });

  test('README lists every acknowledged rule', () => {
    const readme = fs.readFileSync(path.join(INFRA_DIR, 'README.md'), 'utf8');
    const app = exampleApp();
    const acks = acknowledgements(app);
    assert.ok(acks.length > 0);
    for (const [, id] of acks) {
      const rule = id.replace(/\[.*$/, '');
      assert.ok(readme.includes(rule), `README.md does not list ${rule}`);
    }
  });
});
