// The alarms (dead letters, each function's Lambda errors, jobs' failure rates and missed
// schedules, the scaler's errors per worker), where they publish, and that the topics and the
// key let CloudWatch publish exactly those alarms and nothing else.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Duration } from 'aws-cdk-lib';
import * as sns from 'aws-cdk-lib/aws-sns';
import { existingResources } from './fixtures';
import { asArray, evaluate, resourcesOfType, synthExample } from './support';

const example = synthExample();
const existing = existingResources();
const ACCOUNT = '123456789012';
const CLOUDWATCH = { Service: 'cloudwatch.amazonaws.com' };

type Json = Record<string, any>;

/** Alarms by the end of their name (`launcher-errors`, …), with their deployed ARN and actions. */
function alarms(json: Json): Map<string, { arn: string; actions: any[]; props: any }> {
  const out = new Map<string, { arn: string; actions: any[]; props: any }>();
  for (const [, r] of resourcesOfType(json, 'AWS::CloudWatch::Alarm')) {
    const name: string = r.Properties.AlarmName;
    const kind = name.replace(/^.*-[0-9A-F]{8}-/, '');
    assert.ok(!out.has(kind), `two alarms named ...-${kind}`);
    out.set(kind, {
      arn: `arn:aws:cloudwatch:eu-central-1:${ACCOUNT}:alarm:${name}`,
      actions: r.Properties.AlarmActions ?? [],
      props: r.Properties,
    });
  }
  return out;
}

/** Logical IDs of the topics the construct created: [alert topic, alarm topic]. */
function topics(json: Json): { alerts: string; alarms?: string } {
  const found = resourcesOfType(json, 'AWS::SNS::Topic');
  const alerts = found.find(([, r]) => r.Properties.DisplayName === 'jobrunner alerts')?.[0];
  const alarmTopic = found.find(([, r]) => r.Properties.DisplayName === 'jobrunner alert-path alarms')?.[0];
  assert.ok(alerts, 'an alert topic');
  return { alerts, alarms: alarmTopic };
}

/** The Allow statements of the topic's policy, evaluated as deployed. */
function topicAllows(json: Json, topic: string): any[] {
  const policies = resourcesOfType(json, 'AWS::SNS::TopicPolicy').filter(([, r]) =>
    r.Properties.Topics.some((t: any) => t.Ref === topic),
  );
  assert.equal(policies.length, 1, `one policy for ${topic}`);
  const statements = evaluate(json, policies[0][1].Properties.PolicyDocument.Statement);
  return statements.filter((s: any) => s.Effect === 'Allow');
}

function keyStatements(json: Json): any[] {
  const [[, key]] = resourcesOfType(json, 'AWS::KMS::Key');
  return evaluate(json, key.Properties.KeyPolicy.Statement);
}

/** ARNs of the alarms whose actions include the topic. */
function alarmArnsPublishingTo(json: Json, topic: string): string[] {
  return [...alarms(json).values()]
    .filter((a) => a.actions.some((x) => x.Ref === topic))
    .map((a) => a.arn)
    .sort();
}

for (const [name, stack] of [['example', example], ['existing resources', existing]] as const) {
  describe(`CloudWatch may publish the stack's alarms (${name})`, () => {
    const { json } = stack;
    const t = topics(json);

    test('every alarm publishes to one of the two topics', () => {
      assert.equal(alarms(json).size, 9);
      for (const [kind, a] of alarms(json)) assert.equal(a.actions.length, 1, kind);
      assert.ok(t.alarms, 'a second topic for the alert-path alarms');
    });

    for (const which of ['alerts', 'alarms'] as const) {
      test(`the ${which === 'alerts' ? 'alert' : 'alarm'} topic's policy allows cloudwatch.amazonaws.com to publish exactly its alarms, from this account`, () => {
        const topic = t[which]!;
        const expected = alarmArnsPublishingTo(json, topic);
        assert.ok(expected.length > 0);
        const allows = topicAllows(json, topic);
        assert.equal(allows.length, 1, JSON.stringify(allows));
        const [allow] = allows;
        assert.deepEqual(allow.Principal, CLOUDWATCH);
        assert.deepEqual(asArray(allow.Action), ['sns:Publish']);
        assert.equal(allow.Resource, evaluate(json, { Ref: topic }));
        assert.deepEqual(Object.keys(allow.Condition).sort(), ['ArnEquals', 'StringEquals']);
        assert.deepEqual(allow.Condition.StringEquals, { 'aws:SourceAccount': ACCOUNT });
        assert.deepEqual(asArray(allow.Condition.ArnEquals['aws:SourceArn']).sort(), expected);
      });
    }

    test('the TLS-only Deny stays on both topics', () => {
      for (const [, r] of resourcesOfType(json, 'AWS::SNS::TopicPolicy')) {
        const deny = r.Properties.PolicyDocument.Statement.filter((s: any) => s.Effect === 'Deny');
        assert.deepEqual(deny.map((s: any) => s.Condition), [{ Bool: { 'aws:SecureTransport': 'false' } }]);
      }
    });

    test('the key lets CloudWatch use it only for those alarms, from this account', () => {
      const cloudwatch = keyStatements(json).filter((s) => s.Principal?.Service === CLOUDWATCH.Service);
      assert.ok(cloudwatch.length > 0);
      const arns: string[] = [];
      for (const s of cloudwatch) {
        assert.deepEqual(asArray(s.Action).sort(), ['kms:Decrypt', 'kms:GenerateDataKey*']);
        assert.deepEqual(s.Condition.StringEquals, { 'aws:SourceAccount': ACCOUNT });
        arns.push(...asArray<string>(s.Condition.ArnEquals['aws:SourceArn']));
      }
      assert.deepEqual(arns.sort(), [...alarms(json).values()].map((a) => a.arn).sort());
    });

    test('no service principal may use the key without aws:SourceAccount and aws:SourceArn', () => {
      for (const s of keyStatements(json)) {
        if (s.Effect !== 'Allow' || !s.Principal?.Service) continue;
        const keys = Object.values(s.Condition ?? {}).flatMap((c: any) => Object.keys(c));
        assert.ok(keys.includes('aws:SourceAccount'), JSON.stringify(s));
        assert.ok(keys.includes('aws:SourceArn'), JSON.stringify(s));
      }
    });
  });
}

describe('alarms and their defaults', () => {
  const a = alarms(example.json);
  const t = topics(example.json);
  const fnRef = (description: string) => {
    const [id] = resourcesOfType(example.json, 'AWS::Lambda::Function').find(([, r]) =>
      String(r.Properties.Description).startsWith(description),
    )!;
    return [{ Name: 'FunctionName', Value: { Ref: id } }];
  };
  const settings = (p: any) => ({
    metric: p.MetricName,
    statistic: p.Statistic,
    period: p.Period,
    threshold: p.Threshold,
    evaluationPeriods: p.EvaluationPeriods,
    datapointsToAlarm: p.DatapointsToAlarm,
    comparison: p.ComparisonOperator,
    missing: p.TreatMissingData,
  });

  test('dead-letter queues: anything in the queue', () => {
    for (const kind of ['launcher-dead-letters', 'tracker-dead-letters']) {
      assert.deepEqual(settings(a.get(kind)!.props), {
        metric: 'ApproximateNumberOfMessagesVisible', statistic: 'Maximum', period: 300, threshold: 1,
        evaluationPeriods: 1, datapointsToAlarm: 1, comparison: 'GreaterThanOrEqualToThreshold', missing: 'notBreaching',
      });
    }
    const queue = (prefix: string) => a.get(`${prefix}-dead-letters`)!.props.Dimensions[0].Value['Fn::GetAtt'][0];
    assert.match(queue('launcher'), /^JobRunnerLaunchBufferDeadLetterQueue/);
    assert.match(queue('tracker'), /^JobRunnerTrackBufferDeadLetterQueue/);
  });

  test('the scaler fails in 3 of 5 one-minute ticks', () => {
    const scaler = a.get('scaler-errors')!.props;
    assert.deepEqual(settings(scaler), {
      metric: 'Errors', statistic: 'Sum', period: 60, threshold: 1, evaluationPeriods: 5, datapointsToAlarm: 3,
      comparison: 'GreaterThanOrEqualToThreshold', missing: 'notBreaching',
    });
    assert.equal(scaler.Namespace, 'AWS/Lambda');
    assert.deepEqual(scaler.Dimensions, fnRef('jobrunner scaler'));
  });

  test('the launcher and the tracker fail in 2 of 3 five-minute periods', () => {
    for (const fn of ['launcher', 'tracker']) {
      const p = a.get(`${fn}-errors`)!.props;
      assert.deepEqual(settings(p), {
        metric: 'Errors', statistic: 'Sum', period: 300, threshold: 1, evaluationPeriods: 3, datapointsToAlarm: 2,
        comparison: 'GreaterThanOrEqualToThreshold', missing: 'notBreaching',
      });
      assert.deepEqual(p.Dimensions, fnRef(`jobrunner ${fn}`));
    }
  });

  test('the alarms about the alert path go to the alarm topic only, the others to the alert topic', () => {
    for (const [kind, alarm] of a) {
      const expected = kind.startsWith('tracker-') ? t.alarms : t.alerts;
      assert.deepEqual(alarm.actions, [{ Ref: expected }], kind);
    }
  });

  test('alarm names are unique in the account: they start with the stack name', () => {
    for (const [, alarm] of a) assert.match(alarm.props.AlarmName, /^JobRunnerExample-JobRunner-[0-9A-F]{8}-/);
  });

  test('each alert email is subscribed to both topics', () => {
    for (const topic of [t.alerts, t.alarms]) {
      const emails = resourcesOfType(example.json, 'AWS::SNS::Subscription')
        .filter(([, r]) => r.Properties.TopicArn.Ref === topic)
        .map(([, r]) => [r.Properties.Protocol, r.Properties.Endpoint]);
      assert.deepEqual(emails.sort(), [['email', 'oncall@example.com'], ['email', 'ops@example.com']]);
    }
  });
});

describe('alarm props', () => {
  test('change an alarm, or turn it off (and out of the policies)', () => {
    const e = existingResources((p) => ({
      ...p,
      alarms: {
        scalerErrors: { threshold: 2, period: Duration.minutes(2), evaluationPeriods: 10, datapointsToAlarm: 4 },
        launcherErrors: { evaluationPeriods: 1 },
        launcherDeadLetters: false,
        trackerErrors: false,
      },
    }));
    const a = alarms(e.json);
    assert.deepEqual([...a.keys()].sort(), [
      'job-report-failure-rate', 'job-report-missed-schedules', 'job-thumbnails-failure-rate', 'launcher-errors',
      'scaler-errors', 'tracker-dead-letters', 'worker-orders-scaler-errors',
    ]);
    const scaler = a.get('scaler-errors')!.props;
    assert.deepEqual([scaler.Threshold, scaler.Period, scaler.EvaluationPeriods, scaler.DatapointsToAlarm], [2, 120, 10, 4]);
    const launcher = a.get('launcher-errors')!.props;
    assert.deepEqual([launcher.Threshold, launcher.Period, launcher.EvaluationPeriods, launcher.DatapointsToAlarm], [1, 300, 1, 1]);
    const cloudwatchArns = keyStatements(e.json)
      .filter((s) => s.Principal?.Service === CLOUDWATCH.Service)
      .flatMap((s) => asArray<string>(s.Condition.ArnEquals['aws:SourceArn']))
      .sort();
    assert.deepEqual(cloudwatchArns, [...a.values()].map((x) => x.arn).sort());
  });

  test('datapointsToAlarm over evaluationPeriods fails at synth', () => {
    assert.throws(
      () => existingResources((p) => ({ ...p, alarms: { scalerErrors: { evaluationPeriods: 2, datapointsToAlarm: 3 } } })),
      /alarms\.scalerErrors: datapointsToAlarm \(3\) exceeds evaluationPeriods \(2\)/,
    );
  });

  test('a topic of your own for the alert-path alarms: no second topic, its policy left alone', () => {
    const arn = `arn:aws:sns:eu-central-1:${ACCOUNT}:ops-pager`;
    const e = existingResources((p) => ({
      ...p,
      alerts: { ...p.alerts, alarmTopic: sns.Topic.fromTopicArn(p.defaults.cluster, 'Pager', arn) },
    }));
    assert.equal(resourcesOfType(e.json, 'AWS::SNS::Topic').length, 1);
    assert.equal(resourcesOfType(e.json, 'AWS::SNS::TopicPolicy').length, 1);
    const a = alarms(e.json);
    assert.deepEqual(a.get('tracker-dead-letters')!.actions, [arn]);
    assert.deepEqual(a.get('tracker-errors')!.actions, [arn]);
    // The key serves only the alarms that publish to the alert topic it encrypts.
    const t = topics(e.json);
    const cloudwatchArns = keyStatements(e.json)
      .filter((s) => s.Principal?.Service === CLOUDWATCH.Service)
      .flatMap((s) => asArray<string>(s.Condition.ArnEquals['aws:SourceArn']))
      .sort();
    assert.deepEqual(cloudwatchArns, alarmArnsPublishingTo(e.json, t.alerts));
  });

  test('alarmEmails subscribe to the alarm topic instead of the alert emails', () => {
    const e = existingResources((p) => ({ ...p, alerts: { ...p.alerts, alarmEmails: ['pager@example.com'] } }));
    const t = topics(e.json);
    const subscribed = (topic: string) =>
      resourcesOfType(e.json, 'AWS::SNS::Subscription')
        .filter(([, r]) => r.Properties.TopicArn.Ref === topic)
        .map(([, r]) => r.Properties.Endpoint);
    assert.deepEqual(subscribed(t.alarms!), ['pager@example.com']);
    assert.deepEqual(subscribed(t.alerts), ['ops@example.com']);
  });

  test('without alerts the alarms exist and publish nowhere; without workers there is no scaler alarm', () => {
    const e = existingResources((p) => ({ ...p, alerts: undefined, workers: undefined }));
    const a = alarms(e.json);
    assert.deepEqual([...a.keys()].sort(), [
      'job-report-failure-rate', 'job-report-missed-schedules', 'job-thumbnails-failure-rate',
      'launcher-dead-letters', 'launcher-errors', 'tracker-dead-letters', 'tracker-errors',
    ]);
    for (const [, alarm] of a) assert.deepEqual(alarm.actions, []);
    assert.equal(resourcesOfType(e.json, 'AWS::KMS::Key').length, 0);
  });
});

describe('alarms on jobrunner metrics', () => {
  const a = alarms(example.json);
  const t = topics(example.json);
  const metricsById = (p: any) => Object.fromEntries((p.Metrics ?? []).map((m: any) => [m.Id, m]));

  test('each job has a failure-rate alarm: (failed + timed_out) / all outcomes, judged from 3 runs, 50% over 15 minutes', () => {
    for (const job of ['process-upload', 'inventory']) {
      const p = a.get(`job-${job}-failure-rate`)!.props;
      assert.deepEqual(
        [p.Threshold, p.EvaluationPeriods, p.DatapointsToAlarm, p.ComparisonOperator, p.TreatMissingData],
        [50, 1, 1, 'GreaterThanOrEqualToThreshold', 'notBreaching'],
      );
      assert.equal(p.MetricName, undefined, 'a metric-math alarm');
      const m = metricsById(p);
      for (const [id, outcome] of [['failed', 'failed'], ['timedOut', 'timed_out'], ['succeeded', 'succeeded'], ['cancelled', 'cancelled']]) {
        assert.deepEqual(m[id].MetricStat, {
          Metric: {
            Namespace: 'jobrunner',
            MetricName: 'runs_finished',
            Dimensions: [{ Name: 'job', Value: job }, { Name: 'outcome', Value: outcome }],
          },
          Period: 900,
          Stat: 'Sum',
        }, `${job} ${id}`);
        assert.equal(m[id].ReturnData, false);
      }
      const [expression] = (p.Metrics as any[]).filter((x) => x.Expression);
      assert.equal(
        expression.Expression,
        'IF((FILL(failed, 0) + FILL(timedOut, 0) + FILL(succeeded, 0) + FILL(cancelled, 0)) >= 3, ' +
          '100 * (FILL(failed, 0) + FILL(timedOut, 0)) / (FILL(failed, 0) + FILL(timedOut, 0) + FILL(succeeded, 0) + FILL(cancelled, 0)), 0)',
      );
      assert.deepEqual(a.get(`job-${job}-failure-rate`)!.actions, [{ Ref: t.alerts }]);
    }
  });

  test('a job with schedules has a missed-schedule alarm; one without has none', () => {
    const p = a.get('job-inventory-missed-schedules')!.props;
    assert.deepEqual(
      [p.Namespace, p.MetricName, p.Dimensions, p.Statistic, p.Period, p.Threshold, p.EvaluationPeriods, p.DatapointsToAlarm],
      ['jobrunner', 'missed_schedules', [{ Name: 'job', Value: 'inventory' }], 'Sum', 300, 1, 1, 1],
    );
    assert.equal(a.has('job-process-upload-missed-schedules'), false);
    assert.deepEqual(a.get('job-inventory-missed-schedules')!.actions, [{ Ref: t.alerts }]);
  });

  test("each worker has an alarm on the scaler's own errors metric: 3 of 5 one-minute periods", () => {
    const p = a.get('worker-orders-scaler-errors')!.props;
    assert.deepEqual(
      [p.Namespace, p.MetricName, p.Dimensions, p.Statistic, p.Period, p.Threshold, p.EvaluationPeriods, p.DatapointsToAlarm],
      ['jobrunner', 'errors', [{ Name: 'worker', Value: 'orders' }], 'Sum', 60, 1, 5, 3],
    );
    assert.deepEqual(a.get('worker-orders-scaler-errors')!.actions, [{ Ref: t.alerts }]);
  });

  test('the new alarms are tuned or turned off by their props, per job too', () => {
    const e = existingResources((p) => ({
      ...p,
      alarms: {
        jobFailureRate: { threshold: 25, minimumRuns: 10, period: Duration.minutes(30) },
        jobFailureRateByJob: { report: false },
        missedSchedules: { evaluationPeriods: 2, datapointsToAlarm: 2 },
        workerScalerErrors: false,
      },
    }));
    const x = alarms(e.json);
    assert.equal(x.has('job-report-failure-rate'), false);
    assert.equal(x.has('worker-orders-scaler-errors'), false);
    const rate = x.get('job-thumbnails-failure-rate')!.props;
    assert.equal(rate.Threshold, 25);
    const [expression] = (rate.Metrics as any[]).filter((m) => m.Expression);
    assert.match(expression.Expression, /^IF\(.* >= 10, /);
    assert.ok((rate.Metrics as any[]).filter((m) => m.MetricStat).every((m) => m.MetricStat.Period === 1800));
    const missed = x.get('job-report-missed-schedules')!.props;
    assert.deepEqual([missed.EvaluationPeriods, missed.DatapointsToAlarm], [2, 2]);
    // The policies follow: exactly the alarms that exist, by ARN.
    const cloudwatchArns = keyStatements(e.json)
      .filter((s) => s.Principal?.Service === CLOUDWATCH.Service)
      .flatMap((s) => asArray<string>(s.Condition.ArnEquals['aws:SourceArn']))
      .sort();
    assert.deepEqual(cloudwatchArns, [...x.values()].map((v) => v.arn).sort());
  });

  test('a per-job setting merges over the general one', () => {
    const e = existingResources((p) => ({
      ...p,
      alarms: { jobFailureRate: { threshold: 20 }, jobFailureRateByJob: { report: { minimumRuns: 1 } } },
    }));
    const report = alarms(e.json).get('job-report-failure-rate')!.props;
    assert.equal(report.Threshold, 20);
    assert.match((report.Metrics as any[]).find((m) => m.Expression).Expression, /^IF\(.* >= 1, /);
  });

  test('bad settings fail at synth, naming the prop', () => {
    assert.throws(
      () => existingResources((p) => ({ ...p, alarms: { jobFailureRate: { minimumRuns: 0 } } })),
      /alarms\.jobFailureRate \(job thumbnails\): minimumRuns must be 1 or more/,
    );
    assert.throws(
      () => existingResources((p) => ({ ...p, alarms: { missedSchedules: { evaluationPeriods: 1, datapointsToAlarm: 2 } } })),
      /alarms\.missedSchedules: datapointsToAlarm \(2\) exceeds evaluationPeriods \(1\)/,
    );
  });
});
