// The config document the construct generates from its props.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import { CONFIG_ENV, estimateConfigBytes, JobRunner, LAMBDA_ENV_LIMIT_BYTES, objectFilter } from '../lib';
import { existingResources } from './fixtures';
import { deployedConfigs, resourcesOfType, synthExample, testApp } from './support';

describe('generated config', () => {
  const existing = existingResources();
  const configs = deployedConfigs(existing.json);
  const config = JSON.parse(Object.values(configs)[0]);

  test('every function gets the same document in JOBRUNNER_CONFIG', () => {
    const functions = resourcesOfType(existing.json, 'AWS::Lambda::Function').filter(([, r]) =>
      String(r.Properties.Description ?? '').startsWith('jobrunner '),
    );
    assert.equal(functions.length, 3);
    assert.equal(Object.keys(configs).length, 3);
    assert.equal(new Set(Object.values(configs)).size, 1);
    for (const [, fn] of functions) assert.ok(CONFIG_ENV in fn.Properties.Environment.Variables);
  });

  test('mirrors the props in the config schema', () => {
    assert.deepEqual(config.defaults, {
      cluster: 'arn:aws:ecs:eu-central-1:123456789012:cluster/jobs',
      subnets: ['subnet-0aaaaaaaaaaaaaaaa', 'subnet-0bbbbbbbbbbbbbbbb'],
      security_groups: ['sg-0123456789abcdef0'],
      assign_public_ip: false,
      capacity: ['FARGATE_SPOT', 'FARGATE'],
    });
    assert.deepEqual(config.jobs.thumbnails, {
      task_definition: 'thumbnails',
      container: 'app',
      command: ['resize', '--input', 's3://{bucket}/{key}'],
      environment: { OUTPUT_PREFIX: 'thumbs/' },
      max_running: 50,
      tags: { team: 'media' },
      size_tiers: [
        { max_bytes: 104857600, cpu: 512, memory: 1024 },
        { cpu: 2048, memory: 8192 },
      ],
    });
    assert.deepEqual(config.jobs.report, {
      task_definition: 'report',
      container: 'main',
      cpu: 256,
      memory: 512,
      cluster: 'arn:aws:ecs:eu-central-1:123456789012:cluster/batch',
      launch_type: 'FARGATE',
    });
    assert.deepEqual(config.triggers.s3, [
      { job: 'thumbnails', bucket: 'uploads', prefix: 'images/', suffix: '.jpg' },
      { job: 'thumbnails', bucket: 'uploads', prefix: 'raw/', min_size: 1, max_size: 1073741824 },
    ]);
    assert.deepEqual(config.triggers.schedule, [
      { name: 'hourly-report', job: 'report', expression: 'rate(1 hour)', timezone: 'Europe/Berlin', overlap: 'forbid' },
    ]);
    assert.deepEqual(config.workers.orders, {
      cluster: 'arn:aws:ecs:eu-central-1:123456789012:cluster/jobs',
      service: 'order-workers',
      queue_url: 'https://sqs.eu-central-1.amazonaws.com/123456789012/orders',
      messages_per_task: 10,
      min_tasks: 0,
      max_tasks: 50,
      scale_in_after_seconds: 300,
    });
    assert.match(config.alerts.topic_arn, /^arn:aws:sns:/);
    assert.deepEqual(config.alerts.notify_on, ['non_zero_exit', 'oom', 'failed_to_start', 'spot_interruption']);
    assert.equal(typeof config.state.table, 'string');
  });

  test('names the created topic and table by reference', () => {
    const raw = JSON.stringify(existing.stack.resolve(existing.jobRunner.configJson));
    const topic = resourcesOfType(existing.json, 'AWS::SNS::Topic')[0][0];
    const table = resourcesOfType(existing.json, 'AWS::DynamoDB::Table')[0][0];
    assert.ok(raw.includes(`{"Ref":"${topic}"}`), 'topic_arn is the topic reference');
    assert.ok(raw.includes(`{"Ref":"${table}"}`), 'state.table is the table reference');
  });

  test('fits Lambda\'s 4 KB environment limit once deployed', () => {
    for (const json of [existing.json, synthExample().json]) {
      for (const [, fn] of resourcesOfType(json, 'AWS::Lambda::Function')) {
        const vars = fn.Properties.Environment?.Variables;
        if (!vars?.[CONFIG_ENV]) continue;
        const deployed = Object.values(deployedConfigs(json))[0];
        const total = Object.entries(vars).reduce(
          (n, [k, v]) => n + k.length + (k === CONFIG_ENV ? Buffer.byteLength(deployed) : String(v).length),
          0,
        );
        assert.ok(total < LAMBDA_ENV_LIMIT_BYTES, `environment is ${total} bytes`);
      }
    }
  });

  test('leaves out sections and fields that are not configured', () => {
    const minimal = existingResources((p) => ({ defaults: p.defaults, jobs: { report: p.jobs!.report } }));
    const doc = JSON.parse(Object.values(deployedConfigs(minimal.json))[0]);
    assert.deepEqual(Object.keys(doc).sort(), ['defaults', 'jobs', 'launcher', 'state'], 'the ledger sections are always there');
    assert.deepEqual(Object.keys(doc.state), ['table'], 'retention_days left to the functions\' default');
    assert.deepEqual(Object.keys(doc.launcher), ['queue_url'], 'wait_seconds left to the functions\' default');
    const functions = resourcesOfType(minimal.json, 'AWS::Lambda::Function').map(([, r]) => String(r.Properties.Description));
    assert.equal(functions.length, 2, 'the launcher and the tracker (the ledger), no scaler');
    assert.ok(functions.some((d) => d.startsWith('jobrunner tracker')));
    assert.equal(resourcesOfType(minimal.json, 'AWS::DynamoDB::Table').length, 1);
    assert.equal(resourcesOfType(minimal.json, 'AWS::SNS::Topic').length, 0);
  });

  test('launcher.queue_url is the launcher\'s own buffer queue', () => {
    const raw = existing.stack.resolve(existing.jobRunner.config) as Record<string, any>;
    assert.deepEqual(raw.launcher.queue_url, existing.stack.resolve(existing.jobRunner.launcher.buffer.queue.queueUrl));
    const [launcherQueue] = resourcesOfType(existing.json, 'AWS::SQS::Queue').find(([id]) => /^JobRunnerLaunchBufferQueue/.test(id))!;
    assert.equal(config.launcher.queue_url, `https://sqs.eu-central-1.amazonaws.com/123456789012/jr-${launcherQueue.toLowerCase().slice(0, 40)}`);
  });

  test('the ledger settings: retention, wait, prices, missed-schedule grace', () => {
    const e = existingResources((p) => ({
      ...p,
      state: { retentionDays: 90 },
      launcher: { waitSeconds: 120 },
      prices: { vcpuHour: 0.04656, gbHour: 0.00511, spotVcpuHour: 0.014, spotGbHour: 0.0015 },
      alerts: { ...p.alerts, missedScheduleAfter: '15m' },
    }));
    const doc = JSON.parse(Object.values(deployedConfigs(e.json))[0]);
    assert.equal(doc.state.retention_days, 90);
    assert.match(doc.state.table, /^jr-/);
    assert.equal(doc.launcher.wait_seconds, 120);
    assert.deepEqual(doc.prices, { vcpu_hour: 0.04656, gb_hour: 0.00511, spot_vcpu_hour: 0.014, spot_gb_hour: 0.0015 });
    assert.equal(doc.alerts.missed_schedule_after, '15m');
    assert.equal(config.prices, undefined, 'no prices: the functions\' built-in table');
    assert.equal(config.alerts.missed_schedule_after, undefined);
  });
});

describe('config checks at synth time', () => {
  function withProps(change: (p: any) => any): () => void {
    return () => existingResources((p) => change({ ...p }));
  }

  test('rejects a trigger naming an unknown job', () => {
    assert.throws(
      withProps((p) => ({ ...p, schedules: [{ name: 'x', job: 'nope', expression: 'rate(1 hour)' }] })),
      /triggers\.schedule\[0\]\.job: unknown job 'nope'/,
    );
    assert.throws(
      withProps((p) => ({ ...p, s3Triggers: [{ ...p.s3Triggers[0], job: 'nope' }] })),
      /triggers\.s3\[0\]\.job: unknown job 'nope'/,
    );
  });

  test('rejects names outside letters, digits, - and _', () => {
    assert.throws(withProps((p) => ({ ...p, jobs: { ...p.jobs, 'bad name': p.jobs.report } })), /jobs\.bad name/);
    assert.throws(
      withProps((p) => ({ ...p, schedules: [{ ...p.schedules[0], name: 'hourly.report' }] })),
      /triggers\.schedule\[0\]\.name/,
    );
    assert.throws(withProps((p) => ({ ...p, workers: { 'a/b': p.workers.orders } })), /workers\.a\/b/);
  });

  test('rejects duplicate schedule names', () => {
    assert.throws(withProps((p) => ({ ...p, schedules: [p.schedules[0], p.schedules[0]] })), /duplicate schedule/);
  });

  test('rejects a container the task definition does not have', () => {
    assert.throws(
      withProps((p) => ({ ...p, jobs: { ...p.jobs, report: { ...p.jobs.report, container: 'nope' } } })),
      /jobs\.report\.container: task definition 'report' has no container 'nope'/,
    );
  });

  test('rejects capacity together with launchType', () => {
    assert.throws(
      withProps((p) => ({ ...p, jobs: { ...p.jobs, report: { ...p.jobs.report, capacity: ['FARGATE'] } } })),
      /jobs\.report: set capacity or launchType/,
    );
  });

  test('fails at synth when the config cannot fit the 4 KB environment', () => {
    const app = testApp();
    const stack = new Stack(app, 'Big');
    const vpc = new ec2.Vpc(stack, 'Vpc', { natGateways: 0 });
    const cluster = new ecs.Cluster(stack, 'Cluster', { vpc });
    const td = new ecs.FargateTaskDefinition(stack, 'Td', { family: 'big' });
    td.addContainer('app', { image: ecs.ContainerImage.fromRegistry('busybox') });
    const jobs = Object.fromEntries(
      Array.from({ length: 40 }, (_, i) => [
        `job-${i}`,
        { taskDefinition: td, container: 'app', command: ['run', '--input', 's3://{bucket}/{key}', '--verbose'] },
      ]),
    );
    assert.throws(() => new JobRunner(stack, 'JobRunner', { defaults: { cluster }, jobs }), /over Lambda's 4 KB environment limit/);
  });

  test('rejects ledger settings the functions would reject', () => {
    assert.throws(withProps((p) => ({ ...p, state: { retentionDays: 0 } })), /state\.retentionDays: 0 is not a whole number of days/);
    assert.throws(withProps((p) => ({ ...p, state: { retentionDays: 1.5 } })), /state\.retentionDays/);
    assert.throws(withProps((p) => ({ ...p, launcher: { waitSeconds: 901 } })), /launcher\.waitSeconds: 901 is not a whole number of seconds from 1 to 900/);
    assert.throws(withProps((p) => ({ ...p, launcher: { waitSeconds: 0 } })), /launcher\.waitSeconds/);
    assert.throws(
      withProps((p) => ({ ...p, prices: { vcpuHour: -1, gbHour: 0.1, spotVcpuHour: 0.1, spotGbHour: 0.1 } })),
      /prices\.vcpuHour: -1 is not a price/,
    );
    assert.doesNotThrow(withProps((p) => ({ ...p, state: { retentionDays: 1 }, launcher: { waitSeconds: 900 } })));
  });

  test('estimates deploy-time values conservatively', () => {
    const size = estimateConfigBytes({ a: 'x', b: '${Token[TOKEN.1]}', c: ['#{Token[TOKEN.2]}'] });
    assert.equal(size.tokens, 2);
    assert.equal(size.literal, JSON.stringify({ a: 'x', b: '', c: [''] }).length);
    assert.equal(size.estimate, size.literal + 200);
  });
});

describe('S3 rule object filter', () => {
  const bucket = {} as any;
  test('prefix, suffix, both (as one wildcard), sizes', () => {
    assert.deepEqual(objectFilter([{ job: 'j', bucket, prefix: 'a/' }]), { object: { key: [{ prefix: 'a/' }] } });
    assert.deepEqual(objectFilter([{ job: 'j', bucket, suffix: '.jpg' }]), { object: { key: [{ suffix: '.jpg' }] } });
    assert.deepEqual(objectFilter([{ job: 'j', bucket, prefix: 'a*/', suffix: '.jp\\g' }]), {
      object: { key: [{ wildcard: 'a\\*/*.jp\\\\g' }] },
    });
    assert.deepEqual(objectFilter([{ job: 'j', bucket, minSize: 10 }]), { object: { size: [{ numeric: ['>=', 10] }] } });
  });

  test('several triggers are ORed; one without filters takes every object', () => {
    assert.deepEqual(objectFilter([{ job: 'j', bucket, prefix: 'a/' }, { job: 'k', bucket, prefix: 'b/' }]), {
      $or: [{ object: { key: [{ prefix: 'a/' }] } }, { object: { key: [{ prefix: 'b/' }] } }],
    });
    assert.deepEqual(objectFilter([{ job: 'j', bucket, prefix: 'a/' }, { job: 'k', bucket, prefix: 'a/' }]), {
      object: { key: [{ prefix: 'a/' }] },
    });
    assert.deepEqual(objectFilter([{ job: 'j', bucket, prefix: 'a/' }, { job: 'k', bucket }]), {});
  });
});
