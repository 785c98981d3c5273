// One schema for Rust and CDK: lib/config.schema.ts is what `jobrunner schema` generates today,
// and the config the construct writes, from every kind of props, is valid against that schema
// (ajv) and accepted by `jobrunner validate`.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { before, describe, test } from 'node:test';
import Ajv2020, { type ValidateFunction } from 'ajv/dist/2020';
import { Duration } from 'aws-cdk-lib';
import { ALERT_CLASSES, type JobRunnerProps, type ScheduleTriggerProps } from '../lib';
import { CONFIG_TYPES_FILE, callNames, configTypes, jobrunnerSchema } from '../scripts/config-types';
import { existingResources } from './fixtures';
import { deployedConfigs, jobrunnerBinary, synthExample } from './support';

let bin: string;
let schema: Record<string, any>;
let validateSchema: ValidateFunction;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jobrunner-schema-'));

/** schemars' integer formats, checked for their range. */
const INTEGER_FORMATS: Record<string, [number, number]> = {
  uint8: [0, 2 ** 8 - 1],
  uint16: [0, 2 ** 16 - 1],
  uint32: [0, 2 ** 32 - 1],
  uint64: [0, Number.MAX_SAFE_INTEGER],
  uint: [0, Number.MAX_SAFE_INTEGER],
  int32: [-(2 ** 31), 2 ** 31 - 1],
  int64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
};

/** schemars' floating-point formats (f32, f64): any finite number. */
const FLOAT_FORMATS = ['float', 'double'];

function compileSchema(s: Record<string, any>): ValidateFunction {
  assert.equal(s.$schema, 'https://json-schema.org/draft/2020-12/schema', 'the schema is draft 2020-12 (ajv/dist/2020)');
  const ajv = new Ajv2020({ strict: true, allErrors: true, allowUnionTypes: true });
  for (const [name, [min, max]] of Object.entries(INTEGER_FORMATS)) {
    ajv.addFormat(name, { type: 'number', validate: (n: number) => Number.isInteger(n) && n >= min && n <= max });
  }
  for (const name of FLOAT_FORMATS) ajv.addFormat(name, { type: 'number', validate: (n: number) => Number.isFinite(n) });
  return ajv.compile(s);
}

/** Schema errors of a document, as one line each (empty when valid). */
function schemaErrors(document: unknown): string[] {
  if (validateSchema(document)) return [];
  return (validateSchema.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message} ${JSON.stringify(e.params)}`);
}

function cliValidate(name: string, config: string): { status: number | null; output: string } {
  const file = path.join(dir, `${name}.json`);
  fs.writeFileSync(file, config);
  const run = spawnSync(bin, ['validate', '--config', file], { encoding: 'utf8' });
  if (run.error) throw run.error;
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

/** The (one) config document a stack's functions receive, evaluated as deployed. */
function deployedConfig(json: Record<string, any>): string {
  const configs = [...new Set(Object.values(deployedConfigs(json)))];
  assert.equal(configs.length, 1, 'every function receives the same document');
  return configs[0];
}

before(() => {
  bin = jobrunnerBinary();
  schema = jobrunnerSchema(bin) as Record<string, any>;
  validateSchema = compileSchema(schema);
});

describe('lib/config.schema.ts', () => {
  test('is what `jobrunner schema` generates (run `npm run config-types` after changing the Rust config)', async () => {
    const committed = fs.readFileSync(CONFIG_TYPES_FILE, 'utf8');
    const generated = await configTypes(schema);
    assert.ok(
      committed === generated,
      `${path.relative(process.cwd(), CONFIG_TYPES_FILE)} is stale: the Rust config schema changed. ` +
        'Rebuild the CLI and run `npm run config-types`, then fix what no longer compiles.',
    );
  });

  test('types schedule expressions by the forms the Rust pattern allows', () => {
    assert.deepEqual(callNames(schema.$defs.ScheduleExpression.pattern), ['rate', 'cron']);
    assert.deepEqual(callNames('^(?:rate\\(\\d+\\)|cron\\([^)]+\\)|at\\(.*\\))$'), ['rate', 'cron', 'at']);
    assert.equal(callNames('^(?:[01][0-9]|2[0-3]):[0-5][0-9]$'), undefined);
    assert.equal(callNames('^rate\\(.*\\) or more$'), undefined);
    assert.match(fs.readFileSync(CONFIG_TYPES_FILE, 'utf8'), /export type ScheduleExpression = `rate\(\$\{string\}\)` \| `cron\(\$\{string\}\)`;/);
  });

  test('ALERT_CLASSES are exactly the schema\'s classes', () => {
    const classes = schema.$defs.Class.oneOf?.map((c: any) => c.const) ?? schema.$defs.Class.enum;
    assert.deepEqual([...ALERT_CLASSES].sort(), [...classes].sort());
    for (const c of ['succeeded', 'scaled_in', 'user_stopped']) assert.ok(ALERT_CLASSES.includes(c as never), c);
  });
});

/** Values the props cannot take: each line fails to compile (tsc runs over the tests). */
export function propsTheCompilerRejects(p: ScheduleTriggerProps): ScheduleTriggerProps[] {
  return [
    // @ts-expect-error EventBridge Scheduler's one-time at(...) is not a form the functions accept
    { ...p, expression: 'at(2030-01-01T00:00:00)' },
    // @ts-expect-error an expression must be rate(...) or cron(...)
    { ...p, expression: '0 3 * * *' },
    // @ts-expect-error not an IANA time zone name
    { ...p, timezone: 'Mars/Olympus_Mons' },
    // @ts-expect-error overlap is allow, forbid or replace
    { ...p, overlap: 'queue' },
  ];
}

// @ts-expect-error not an alert class
export const unknownClass: JobRunnerProps['alerts'] = { notifyOn: ['disk_full'] };

/** Several props sets that together use every alert class and every schedule expression form. */
const PROPS_SETS: Record<string, (p: JobRunnerProps) => JobRunnerProps> = {
  'fixture as is': (p) => p,
  'every optional section left out': (p) => ({ defaults: p.defaults, jobs: { report: p.jobs!.report } }),
  'every alert class': (p) => ({ ...p, alerts: { emails: [], notifyOn: [...ALERT_CLASSES] } }),
  'no alert class': (p) => ({ ...p, alerts: { notifyOn: [] } }),
  'alerts with the default classes': (p) => ({ ...p, alerts: {} }),
  'ledger settings: retention, wait, prices, missed-schedule grace': (p) => ({
    ...p,
    state: { retentionDays: 90 },
    launcher: { waitSeconds: 900 },
    prices: { vcpuHour: 0.04048, gbHour: 0.004445, spotVcpuHour: 0.012144, spotGbHour: 0.0013335 },
    alerts: { ...p.alerts, missedScheduleAfter: '1h 30m' },
  }),
  'every schedule expression form, time zone and overlap': (p) => ({
    ...p,
    schedules: [
      { name: 'minutely', job: 'report', expression: 'rate(1 minute)' },
      { name: 'every-5-minutes', job: 'report', expression: 'rate(5 minutes)', overlap: 'allow' },
      { name: 'hourly', job: 'report', expression: 'rate(1 hour)', timezone: 'Europe/Berlin', overlap: 'forbid' },
      { name: 'twice-a-day', job: 'report', expression: 'rate(12 hours)', overlap: 'replace' },
      { name: 'daily', job: 'report', expression: 'rate(1 day)' },
      { name: 'rarely', job: 'report', expression: 'rate(99999 days)' },
      { name: 'nightly', job: 'report', expression: 'cron(0 3 * * ? *)', timezone: 'America/New_York' },
      { name: 'weekdays', job: 'report', expression: 'cron(0/15 8-18 ? * MON-FRI *)', timezone: 'Asia/Tokyo' },
      { name: 'first-monday', job: 'report', expression: 'cron(0 18 ? * 2#1 *)', timezone: 'Etc/UTC' },
      { name: 'last-day', job: 'report', expression: 'cron(0 12 L * ? 2026-2030)' },
      {
        name: 'with-overrides',
        job: 'report',
        expression: 'cron(30 2 1 * ? *)',
        environment: { MODE: 'full' },
        command: ['resize', '--all'],
      },
    ],
  }),
  'workers with windows, steps and sampling': (p) => ({
    ...p,
    workers: {
      orders: {
        ...p.workers!.orders,
        minTasks: 1,
        scaleInAfter: Duration.minutes(10),
        countDelayed: true,
        maxStepOut: 5,
        maxStepIn: 2,
        sampleEverySeconds: 15,
        windows: [
          { days: ['MON-FRI'], start: '08:00', end: '18:00', timezone: 'Europe/Berlin', minTasks: 2, maxTasks: 40 },
          { days: ['SAT', 'SUN'], start: '00:00', end: '24:00', timezone: '+01:00', maxTasks: 5 },
          { start: '22:00', end: '23:30', minTasks: 0 },
        ],
      },
    },
  }),
  'launch settings on a job: EC2, platform version, propagated tags': (p) => ({
    ...p,
    jobs: {
      ...p.jobs,
      thumbnails: { ...p.jobs!.thumbnails, capacity: undefined, launchType: 'EC2', propagateTags: true },
      report: { ...p.jobs!.report, platformVersion: '1.4.0', assignPublicIp: true },
    },
  }),
};

describe('the config the construct writes is valid against the schema, and jobrunner validate accepts it', () => {
  test('of the example stack', () => {
    const config = deployedConfig(synthExample().json);
    assert.deepEqual(schemaErrors(JSON.parse(config)), []);
    const cli = cliValidate('example', config);
    assert.equal(cli.status, 0, cli.output);
  });

  for (const [name, override] of Object.entries(PROPS_SETS)) {
    test(name, () => {
      const config = deployedConfig(existingResources(override).json);
      assert.deepEqual(schemaErrors(JSON.parse(config)), [], config);
      const cli = cliValidate(name.replace(/\W+/g, '-'), config);
      assert.equal(cli.status, 0, cli.output);
    });
  }

  test('the props sets use every alert class and both expression forms', () => {
    const documents = Object.values(PROPS_SETS).map((o) => JSON.parse(deployedConfig(existingResources(o).json)));
    const classes = new Set(documents.flatMap((d) => d.alerts?.notify_on ?? []));
    assert.deepEqual([...classes].sort(), [...ALERT_CLASSES].sort());
    const forms = new Set(documents.flatMap((d) => (d.triggers?.schedule ?? []).map((s: any) => s.expression.replace(/\(.*$/, ''))));
    assert.deepEqual([...forms].sort(), ['cron', 'rate']);
  });
});

describe('the schema check is real', () => {
  const base = () => JSON.parse(deployedConfig(existingResources().json));

  test('an unknown field is rejected', () => {
    const config = base();
    config.jobs.thumbnails.no_such_field = 1;
    assert.match(schemaErrors(config).join('\n'), /must NOT have additional properties.*no_such_field/);
  });

  test('an at(...) expression is rejected', () => {
    const config = base();
    config.triggers.schedule[0].expression = 'at(2030-01-01T00:00:00)';
    assert.match(schemaErrors(config).join('\n'), /\/triggers\/schedule\/0\/expression must match pattern/);
  });

  test('an unknown alert class is rejected', () => {
    const config = base();
    config.alerts.notify_on = ['disk_full'];
    assert.match(schemaErrors(config).join('\n'), /\/alerts\/notify_on\/0/);
  });

  test('an unknown time zone is rejected', () => {
    const config = base();
    config.triggers.schedule[0].timezone = 'Mars/Olympus_Mons';
    assert.match(schemaErrors(config).join('\n'), /\/triggers\/schedule\/0\/timezone/);
  });
});
