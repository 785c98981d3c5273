// The dashboard: one widget per subject, each graphing exactly the metrics of the metric
// catalogue (names, dimensions, statistics), built from the config's jobs and workers; and the
// prop that leaves it out.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Duration } from 'aws-cdk-lib';
import { existingResources } from './fixtures';
import { resourcesOfType, synthExample } from './support';

type Json = Record<string, any>;

/** A CloudFormation value as text: references become `<Ref:ID>` / `<GetAtt:ID.Attr>`. */
function text(value: any): string {
  if (typeof value === 'string') return value;
  if (value?.Ref) return value.Ref === 'AWS::Region' ? 'eu-central-1' : `<Ref:${value.Ref}>`;
  if (value?.['Fn::GetAtt']) return `<GetAtt:${value['Fn::GetAtt'].join('.')}>`;
  if (value?.['Fn::Join']) return value['Fn::Join'][1].map(text).join(value['Fn::Join'][0]);
  throw new Error(`cannot read ${JSON.stringify(value)}`);
}

/** The dashboard bodies of the template, parsed. */
function dashboards(json: Json): any[] {
  return resourcesOfType(json, 'AWS::CloudWatch::Dashboard').map(([, r]) => JSON.parse(text(r.Properties.DashboardBody)));
}

/** Graph widgets by title. */
function graphs(body: any): Map<string, any> {
  const out = new Map<string, any>();
  for (const w of body.widgets) if (w.type === 'metric') out.set(w.properties.title, w.properties);
  return out;
}

/** A graph's metrics as [namespace, name, {dimensions}, stat, period, axis]. */
function metrics(graph: any): [string, string, Record<string, string>, string, number, string][] {
  return graph.metrics.map((m: any[]) => {
    const options = typeof m[m.length - 1] === 'object' ? m[m.length - 1] : {};
    const names = m.slice(0, typeof m[m.length - 1] === 'object' ? -1 : undefined) as string[];
    const [namespace, name, ...dims] = names;
    const dimensions: Record<string, string> = {};
    for (let i = 0; i < dims.length; i += 2) dimensions[dims[i]] = dims[i + 1];
    return [namespace, name, dimensions, options.stat, options.period ?? graph.period ?? 300, options.yAxis ?? 'left'];
  });
}

/** The logical ID of the function described `description…`. */
function fn(json: Json, description: string): string {
  return resourcesOfType(json, 'AWS::Lambda::Function').find(([, r]) => String(r.Properties.Description).startsWith(description))![0];
}

describe('the dashboard (example stack)', () => {
  const { json } = synthExample();
  const [body] = dashboards(json);
  const g = graphs(body);

  test('one dashboard, opening on the last 3 hours', () => {
    assert.equal(dashboards(json).length, 1);
    assert.equal(body.start, '-PT3H');
  });

  test('runs by outcome per job: runs_finished [job, outcome], the four outcomes, summed per 5 minutes, stacked', () => {
    for (const job of ['process-upload', 'inventory']) {
      const graph = g.get(`${job}: runs by outcome`);
      assert.ok(graph, job);
      assert.equal(graph.stacked, true);
      assert.deepEqual(
        metrics(graph),
        ['succeeded', 'failed', 'timed_out', 'cancelled'].map((outcome) => [
          'jobrunner', 'runs_finished', { job, outcome }, 'Sum', 300, 'left',
        ]),
      );
    }
  });

  test('p95 queue wait of every job in one graph', () => {
    assert.deepEqual(metrics(g.get('Queue wait p95 (s), per job')), [
      ['jobrunner', 'queue_wait', { job: 'process-upload' }, 'p95', 300, 'left'],
      ['jobrunner', 'queue_wait', { job: 'inventory' }, 'p95', 300, 'left'],
    ]);
  });

  test('running vs cap per job: running and max_running, Maximum', () => {
    for (const job of ['process-upload', 'inventory']) {
      assert.deepEqual(metrics(g.get(`${job}: running vs cap`)), [
        ['jobrunner', 'running', { job }, 'Maximum', 300, 'left'],
        ['jobrunner', 'max_running', { job }, 'Maximum', 300, 'left'],
      ]);
    }
  });

  test('the scaler: backlog and desired per worker (dimension worker)', () => {
    assert.deepEqual(metrics(g.get('orders: desired vs backlog')), [
      ['jobrunner', 'backlog', { worker: 'orders' }, 'Maximum', 300, 'left'],
      ['jobrunner', 'desired', { worker: 'orders' }, 'Maximum', 300, 'right'],
    ]);
  });

  test('dead-letter queues: messages visible in the launcher and the tracker DLQs', () => {
    const queues = metrics(g.get('Dead-letter queues: messages visible')!);
    assert.equal(queues.length, 2);
    for (const [i, prefix] of ['JobRunnerLaunchBufferDeadLetterQueue', 'JobRunnerTrackBufferDeadLetterQueue'].entries()) {
      const [namespace, name, dims, stat] = queues[i];
      assert.deepEqual([namespace, name, stat], ['AWS/SQS', 'ApproximateNumberOfMessagesVisible', 'Maximum']);
      assert.match(dims.QueueName, new RegExp(`^<GetAtt:${prefix}[0-9A-F]{8}\\.QueueName>$`));
    }
  });

  test("each function's errors and throttles (Sum) and duration (p95)", () => {
    for (const name of ['launcher', 'scaler', 'tracker']) {
      const id = fn(json, `jobrunner ${name}`);
      assert.deepEqual(metrics(g.get(`${name}: errors, throttles, duration`)), [
        ['AWS/Lambda', 'Errors', { FunctionName: `<Ref:${id}>` }, 'Sum', 300, 'left'],
        ['AWS/Lambda', 'Throttles', { FunctionName: `<Ref:${id}>` }, 'Sum', 300, 'left'],
        ['AWS/Lambda', 'Duration', { FunctionName: `<Ref:${id}>` }, 'p95', 300, 'right'],
      ]);
    }
  });

  test('every graph is one of the above', () => {
    assert.equal(g.size, 1 + 2 * 2 + 1 + 1 + 3);
  });
});

describe('dashboard props', () => {
  test('`dashboard: false` leaves it out', () => {
    const e = existingResources((p) => ({ ...p, dashboard: false }));
    assert.equal(dashboards(e.json).length, 0);
    assert.equal(e.jobRunner.dashboard, undefined);
  });

  test('name, period and time range; jobs and workers from the config (no workers: no scaler graphs)', () => {
    const e = existingResources((p) => ({
      ...p,
      workers: undefined,
      dashboard: { dashboardName: 'ops-jobs', period: Duration.minutes(1), start: '-PT12H' },
    }));
    const [[, resource]] = resourcesOfType(e.json, 'AWS::CloudWatch::Dashboard');
    assert.equal(resource.Properties.DashboardName, 'ops-jobs');
    const [body] = dashboards(e.json);
    assert.equal(body.start, '-PT12H');
    const g = graphs(body);
    assert.deepEqual(
      [...g.keys()].sort(),
      [
        'Dead-letter queues: messages visible',
        'Queue wait p95 (s), per job',
        'launcher: errors, throttles, duration',
        'report: running vs cap',
        'report: runs by outcome',
        'thumbnails: running vs cap',
        'thumbnails: runs by outcome',
        'tracker: errors, throttles, duration',
      ],
    );
    for (const graph of g.values()) for (const m of metrics(graph)) assert.equal(m[4], 60);
  });
});
